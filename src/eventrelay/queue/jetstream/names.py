"""Subjects, stream and consumer names, and message headers of the JetStream backend.

Layout (``P`` = ``storage.stream``, default ``EVENTRELAY``)::

    stream P        subjects P.job.<destination>.<source>   one message per (event, destination): the work
                             P.job.<destination>.<source>.<lane>   ... of a destination ordered by user (lanes.py)
                             P.unrouted.<source>            events no destination wanted (dedup + archive)
                             P.job.<destination>.<source>.replay.<replay id>   a replay's jobs (replays.py)
    stream P_DEAD   subjects P.dead.<destination>           dead letters, kept until redriven
                             P.dead.<destination>.replay.<replay id>   ... of a replay's jobs
    stream P_ARCHIVE subjects P.archive.<source>.<call type>   every accepted event once (archive.py)
    KV P_REPLAYS    <replay id> -> the replay's record (JSON)   replays (replays.py)
    KV P_ATTEMPTS   <dest hash>.<seq>-<hash> -> {attempts, first, reply}   retried jobs (attempts.py)
    KV P_LANES      <hash>.<lane> -> {done, wait}           per-user lanes: the last settled sequence
    consumer d-<destination> on P, filter P.job.<destination>.>   durable pull consumer shared by all
                                                                   delivery processes

Names become subject tokens and consumer names, which may not hold ``.``, ``*``, ``>``,
spaces or slashes: ``token()`` keeps ``[A-Za-z0-9_-]`` and escapes anything else as ``~XX``
(reversible, so two different names never share a token).
"""

from __future__ import annotations

from eventrelay.storage.nats import token

# Header names carried on every work message (the body is the normalised event JSON).
MSG_ID = "Nats-Msg-Id"
H_MESSAGE_ID = "Er-Message-Id"
H_SOURCE = "Er-Source"
H_CALL_TYPE = "Er-Call-Type"
H_RECEIVED_AT = "Er-Received-At"
H_DESTINATION = "Er-Destination"
H_REDRIVEN_AT = "Er-Redriven-At"  # on a re-driven work message: its retry window starts there
H_LANE = "Er-Lane"  # the user lane of a message of an ordered destination (its subject has the token)
H_REPLAY = "Er-Replay"  # on a replay's job (and its dead letter): the replay's id
H_ARCHIVE_SEQ = "Er-Archive-Seq"  # ... and the archived event's sequence in P_ARCHIVE
H_LANE_TOKEN = "Er-Dead-Lane-Token"  # on a dead letter: its lane's subject token, for the re-drive
# Extra headers of dead letters.
H_STATUS = "Er-Dead-Status"
H_REASON = "Er-Dead-Reason"
H_ATTEMPTS = "Er-Attempts"
H_DEAD_AT = "Er-Dead-At"


class Names:
    """Every name derived from the stream prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.stream = prefix
        self.dead_stream = f"{prefix}_DEAD"
        self.attempts_bucket = f"{prefix}_ATTEMPTS"
        self.lanes_bucket = f"{prefix}_LANES"
        self.archive_stream = f"{prefix}_ARCHIVE"
        self.replays_bucket = f"{prefix}_REPLAYS"

    def job_subject(self, destination: str, source: str) -> str:
        return f"{self.prefix}.job.{token(destination)}.{token(source)}"

    def lane_subject(self, destination: str, source: str, lane_token: str) -> str:
        return f"{self.prefix}.job.{token(destination)}.{token(source)}.{lane_token}"

    def lane_filter(self, destination: str, lane_token: str) -> str:
        """Every message of one lane, whatever source it came from."""
        return f"{self.prefix}.job.{token(destination)}.*.{lane_token}"

    def job_filter(self, destination: str) -> str:
        return f"{self.prefix}.job.{token(destination)}.>"

    def job_filter_all(self) -> str:
        return f"{self.prefix}.job.>"

    def unrouted_subject(self, source: str) -> str:
        return f"{self.prefix}.unrouted.{token(source)}"

    def dead_subject(self, destination: str) -> str:
        return f"{self.prefix}.dead.{token(destination)}"

    def replay_subject(self, destination: str, source: str, replay_id: str) -> str:
        """A replay's job: six tokens, so never a lane's (five) and never matched by a lane filter."""
        return f"{self.prefix}.job.{token(destination)}.{token(source)}.replay.{token(replay_id)}"

    def replay_filter(self, destination: str, replay_id: str) -> str:
        """Every job of one replay still in the work stream (settled ones are deleted)."""
        return f"{self.prefix}.job.{token(destination)}.*.replay.{token(replay_id)}"

    def dead_replay_subject(self, destination: str, replay_id: str) -> str:
        return f"{self.prefix}.dead.{token(destination)}.replay.{token(replay_id)}"

    def dead_replay_filter(self, destination: str) -> str:
        """The dead letters of every replay into ``destination``."""
        return f"{self.prefix}.dead.{token(destination)}.replay.*"

    def archive_subject(self, source: str, call_type: str) -> str:
        return f"{self.prefix}.archive.{token(source)}.{token(call_type)}"

    def archive_filter(self, source: str | None, call_type: str | None) -> str:
        """The archived events of one source and/or call type (None: any)."""
        kept = ["*" if name is None else token(name) for name in (source, call_type)]
        return f"{self.prefix}.archive.{kept[0]}.{kept[1]}"

    def archive_subjects(self) -> list[str]:
        return [f"{self.prefix}.archive.>"]

    def work_subjects(self) -> list[str]:
        return [f"{self.prefix}.job.>", f"{self.prefix}.unrouted.>"]

    def dead_subjects(self) -> list[str]:
        return [f"{self.prefix}.dead.>"]

    @staticmethod
    def durable(destination: str) -> str:
        return f"d-{token(destination)}"

    @staticmethod
    def work_msg_id(destination: str, message_id: str) -> str:
        """Dedup key of one (event, destination): a resend within the window is dropped per destination."""
        return f"{destination}/{message_id}"

    @staticmethod
    def replay_msg_id(replay_id: str, archive_seq: int, destination: str) -> str:
        """Dedup key of one replayed event: a step repeated after a crash publishes it once."""
        return f"replay/{replay_id}/{archive_seq}/{destination}"

    @staticmethod
    def unrouted_msg_id(message_id: str) -> str:
        return f"/{message_id}"  # a destination name is never empty, so this cannot collide
