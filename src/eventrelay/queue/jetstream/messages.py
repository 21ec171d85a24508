"""Jobs to JetStream messages and back: the headers of work messages, dead letters and re-driven
messages (names in ``names.py``), and the ``Job`` a delivered message is."""

from __future__ import annotations

import logging
import time

from nats.aio.msg import Msg

from eventrelay.core.records import Accepted, DeadStatus, Job
from eventrelay.queue.archive import ArchivedEvent
from eventrelay.queue.jetstream.names import (
    H_ARCHIVE_SEQ,
    H_ATTEMPTS,
    H_CALL_TYPE,
    H_DEAD_AT,
    H_DESTINATION,
    H_LANE,
    H_LANE_TOKEN,
    H_MESSAGE_ID,
    H_REASON,
    H_RECEIVED_AT,
    H_REDRIVEN_AT,
    H_REPLAY,
    H_SOURCE,
    H_STATUS,
    MSG_ID,
    Names,
)

log = logging.getLogger(__name__)

MAX_HEADER_VALUE = 1_000  # characters of a free-text header (a dead letter's reason): headers are small


def work_headers(item: Accepted) -> dict[str, str]:
    """The event's headers on each of its work messages (the body is the event)."""
    return {
        H_MESSAGE_ID: item.message_id,
        H_SOURCE: item.source,
        H_CALL_TYPE: item.call_type,
        H_RECEIVED_AT: repr(item.received_at),
    }


def job_of(msg: Msg, destination: str) -> Job:
    """The job a delivered work message carries, with no attempt yet counted (``attempts``
    comes from the attempts bucket when the message was delivered before)."""
    headers = msg.headers or {}
    token = lane_token_of(msg.subject)
    meta = {"seq": str(msg.metadata.sequence.stream)}
    if token is not None:
        meta["lane"] = token
    return Job(
        handle=msg.reply,
        destination=destination,
        message_id=headers.get(H_MESSAGE_ID, ""),
        source=headers.get(H_SOURCE, ""),
        call_type=headers.get(H_CALL_TYPE, ""),
        received_at=float(headers.get(H_RECEIVED_AT, "0")),
        body=msg.data,
        meta=meta,
        redriven_at=_time_header(headers, H_REDRIVEN_AT),
        lane=headers.get(H_LANE) if token is not None else None,
        replay=headers.get(H_REPLAY),
    )


def archive_headers(item: Accepted) -> dict[str, str]:
    """The headers of ``item``'s archive message: the event's own, deduplicated by messageId (a
    client's retry within the dedup window is archived once)."""
    return {**work_headers(item), MSG_ID: item.message_id}


def archived_of(seq: int, headers: dict[str, str], body: bytes) -> ArchivedEvent:
    """The archived event a message of the archive stream (at ``seq``) holds."""
    return ArchivedEvent(
        seq=seq,
        message_id=headers.get(H_MESSAGE_ID, ""),
        source=headers.get(H_SOURCE, ""),
        call_type=headers.get(H_CALL_TYPE, ""),
        received_at=_time_header(headers, H_RECEIVED_AT) or 0.0,
        body=body,
    )


def replay_headers(event: ArchivedEvent, destination: str, replay_id: str) -> dict[str, str]:
    """The headers of the job that replays ``event`` into ``destination``: the event as accepted
    (``Er-Received-At`` unchanged), the replay's id, and a ``Nats-Msg-Id`` of replay, archived
    event and destination, so a step repeated after a crash is deduplicated by the work stream."""
    return {
        H_MESSAGE_ID: event.message_id,
        H_SOURCE: event.source,
        H_CALL_TYPE: event.call_type,
        H_RECEIVED_AT: repr(event.received_at),
        H_DESTINATION: destination,
        H_REPLAY: replay_id,
        H_ARCHIVE_SEQ: str(event.seq),
        MSG_ID: Names.replay_msg_id(replay_id, event.seq, destination),
    }


def lane_token_of(subject: str) -> str | None:
    """The lane token of a work subject (``P.job.<destination>.<source>.<lane>``), or None."""
    parts = subject.split(".")
    return parts[4] if len(parts) == 5 else None


def lane_header(lane: str) -> str:
    """A lane as a header value (one line of limited size: it is shown, the subject identifies it)."""
    return _header_value(lane)


def dead_headers(job: Job, status: DeadStatus, reason: str) -> dict[str, str]:
    """The headers of ``job``'s dead letter (its attempt counted; its lane, if it has one)."""
    lane = {H_LANE: lane_header(job.lane), H_LANE_TOKEN: job.meta["lane"]} if job.lane and "lane" in job.meta else {}
    replay = {H_REPLAY: job.replay} if job.replay is not None else {}
    return {
        **lane,
        **replay,
        H_MESSAGE_ID: job.message_id,
        H_SOURCE: job.source,
        H_CALL_TYPE: job.call_type,
        H_RECEIVED_AT: repr(job.received_at),
        H_DESTINATION: job.destination,
        H_STATUS: status,
        H_REASON: _header_value(reason),
        H_ATTEMPTS: str(job.attempts + 1),
        H_DEAD_AT: repr(time.time()),
        # the work message's stream sequence makes a repeated dead_letter of one job idempotent
        MSG_ID: f"dead/{job.destination}/{job.message_id}/{job.meta.get('seq', '')}",
    }


def redriven_headers(destination: str, origin: str, old: dict[str, str], redriven_at: float) -> dict[str, str]:
    """The headers of the fresh work message a dead letter or a waiting work message (``old``;
    ``origin``: its stream sequence, ``w``-prefixed for a work message) becomes: the event's own,
    without a dead letter's or an attempt count, with the re-drive time. Its ``Nats-Msg-Id`` makes
    a repeated redrive of the same message publish it once."""
    fresh = {k: v for k, v in old.items() if k.startswith("Er-") and not k.startswith("Er-Dead")}
    fresh.pop(H_ATTEMPTS, None)
    fresh.pop(H_LANE_TOKEN, None)  # the subject carries it again
    fresh[H_REDRIVEN_AT] = repr(redriven_at)  # Er-Received-At stays: the event's receipt
    fresh[MSG_ID] = f"redrive/{destination}/{fresh.get(H_MESSAGE_ID, '')}/{origin}"
    return fresh


def _time_header(headers: dict[str, str], name: str) -> float | None:
    """An epoch-seconds header, or None when absent (or unreadable: treated as absent, logged)."""
    value = headers.get(name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        log.warning("jetstream: header %s=%r is not a time; ignored", name, value[:40])
        return None


def _header_value(text: str) -> str:
    """Headers are single lines of limited size: fold newlines, cap the length."""
    return " ".join(text.split())[:MAX_HEADER_VALUE]
