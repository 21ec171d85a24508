"""The archive on JetStream: the stream ``P_ARCHIVE`` (names in ``names.py``), whose limits are
the ``archive:`` settings.

``append`` publishes each accepted event once more, on ``P.archive.<source>.<call type>``, in
the same gather as its work messages and with ``Nats-Msg-Id = messageId`` (a client's retry
within the dedup window is archived once). The stream has limits retention with
``max_age = archive.retention``, ``max_bytes = archive.max_bytes`` and ``discard: old``: JetStream
itself removes the oldest events first, which is the archive's rule. The work stream keeps
``discard: new`` and no byte limit, so a full archive never drops a job waiting for delivery.
An archived event's ``seq`` is its sequence in this stream (receipt order across every ingest
process). Starting with other limits updates the stream (the server applies the new ones at once).
With ``archive: {enabled: false}`` nothing is written or read; a stream an earlier start made is
left as it is (its own max age empties it).

Reads run on a connection of their own, each with an ephemeral pull consumer and bounded pulls
(``archive_scan.py``): a dry run over a large archive never holds up ingest or delivery. A page
read keeps ``READ_AHEAD`` events for the pages after it. A window's start is found by time
(``opt_start_time``, with ``TIME_SLACK`` for the publish time and clock skew: a stored message's
time is JetStream's, ``receivedAt`` the ingest host's), and every event is checked against
``receivedAt`` itself. A span is read headers only.

Note: JetStream reserves a stream's ``max_bytes`` of its storage when the stream is made, so the
server must have ``archive.max_bytes`` (times the replicas) to spare.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass

from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js import JetStreamContext, api
from nats.js.errors import APIError, NotFoundError

from eventrelay.core.errors import StorageError
from eventrelay.core.records import Accepted
from eventrelay.queue.archive import ArchivedEvent, ArchiveInfo, ArchiveLimits, Span, Window
from eventrelay.queue.jetstream.archive_scan import Scan
from eventrelay.queue.jetstream.messages import archive_headers, archived_of
from eventrelay.queue.jetstream.names import Names
from eventrelay.storage.nats import API_TIMEOUT, ERRS_DISK, connect, ensure_stream, started, translate

SCAN_BATCH = 1_000  # messages per pull of a span (headers only: ~250 bytes each)
READ_AHEAD = 500  # archived events one read of a page keeps for the pages after it (~0.6 MB of 1 KB events)
PAGES_KEPT = 4  # windows whose read-ahead is kept (replays and dry runs at once in this process)
TIME_SLACK = 300.0  # seconds a stored message's time may be off its receivedAt: publish retries, clock skew
MAX_STORED_EVENT = 64 * 1024  # stored bytes of the largest archived event: a 32 KB body, headers, subject


class ArchiveStream:
    """The archive stream: written by ``append``, read by replays (see the module docstring).
    ``limits`` None: the archive is off, nothing is written or read."""

    def __init__(
        self, names: Names, limits: ArchiveLimits | None, *, servers: list[str], replicas: int, dedup_window: float
    ) -> None:
        self.names = names
        self.limits = limits
        self.servers = servers
        self.replicas = replicas
        self.dedup_window = dedup_window
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._pages: OrderedDict[Window, _Page] = OrderedDict()  # read-ahead of the windows read last

    async def start(self, js: JetStreamContext, connect_name: str) -> None:
        """Make or update the stream (on the queue's connection), then open the read connection."""
        limits = self.limits
        if limits is None:
            return
        config = api.StreamConfig(
            name=self.names.archive_stream,
            subjects=self.names.archive_subjects(),
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            num_replicas=self.replicas,
            max_age=limits.retention,
            max_bytes=limits.max_bytes,
            discard=api.DiscardPolicy.OLD,
            duplicate_window=max(0.001, min(self.dedup_window, limits.retention)),
        )
        try:
            await ensure_stream(js, config)
        except APIError as exc:
            if exc.err_code in ERRS_DISK:
                raise StorageError(
                    f"JetStream cannot make the archive stream {self.names.archive_stream}: it reserves "
                    f"archive.max_bytes ({limits.max_bytes} bytes, x{self.replicas} replicas) of its storage and "
                    f"has less to spare ({exc.description}); lower archive.max_bytes or give JetStream more storage"
                ) from exc
            raise
        self._nc, self._js = await connect(self.servers, f"{connect_name}-archive")

    async def close(self) -> None:
        nc, self._nc, self._js = self._nc, None, None
        if nc is not None:
            await nc.close()

    @property
    def enabled(self) -> bool:
        return self.limits is not None

    def publish(self, js: JetStreamContext, item: Accepted) -> Awaitable[api.PubAck]:
        subject = self.names.archive_subject(item.source, item.call_type)
        return js.publish(subject, item.body, timeout=API_TIMEOUT, headers=archive_headers(item))

    # -- reads -----------------------------------------------------------------------------------
    async def info(self, now: float | None = None) -> ArchiveInfo:
        """The stream's state. ``pruned_until``: JetStream does not say what its limits removed,
        so this is an upper bound on the receipt time of the newest event removed, None while
        sequence 1 is still kept. When the stream is within one event of ``max_bytes``, size may
        have removed the events just before the oldest kept one: that one's receivedAt. Otherwise
        only age removed events, all stored before ``now - retention``: that time."""
        limits = self.limits
        if limits is None:
            return ArchiveInfo(False, 0, 0, None, None, 0.0, 0)
        try:
            state = (await self._jsc().stream_info(self.names.archive_stream)).state
            oldest = await self._received_at(state.first_seq) if state.messages else None
            newest = await self._received_at(state.last_seq) if state.messages else None
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "archive info") from exc
        pruned_until = None
        if state.first_seq > 1:
            at = time.time() if now is None else now
            if oldest is not None and state.bytes + MAX_STORED_EVENT > limits.max_bytes:
                pruned_until = oldest
            else:
                pruned_until = min(at - limits.retention, oldest if oldest is not None else at)
        return ArchiveInfo(
            True, state.messages, state.bytes, oldest, newest, limits.retention, limits.max_bytes, pruned_until
        )

    async def span(self, window: Window) -> Span:
        """Read the window's events headers only, from its start by time to its end (or to the
        last event stored when the read began)."""
        if self.limits is None:
            return Span(None, None, 0)
        first, last, count = None, None, 0
        try:
            end = (await self._jsc().stream_info(self.names.archive_stream)).state.last_seq
            async with self._scan(window, start_time=min(window.since - TIME_SLACK, time.time())) as scan:
                while msgs := await scan.batch(SCAN_BATCH):
                    for msg in msgs:
                        seq = msg.metadata.sequence.stream
                        if seq > end or msg.metadata.timestamp.timestamp() > window.until + TIME_SLACK:
                            return Span(first, last, count)
                        if _within(archived_of(seq, msg.headers or {}, b""), window):
                            first = seq if first is None else first
                            last, count = seq, count + 1
                await scan.ended(end, window.until + TIME_SLACK)
        except (TimeoutError, NatsError) as exc:
            raise translate(exc, "archive read") from exc
        return Span(first, last, count)

    async def archived(self, window: Window, after_seq: int, last_seq: int, limit: int) -> list[ArchivedEvent]:
        """From the window's read-ahead when it holds the page, else one read of ``READ_AHEAD``
        events (a replay's steps take a few at a time: most steps read nothing from the server)."""
        if self.limits is None or after_seq >= last_seq or limit <= 0:
            return []
        page = self._pages.get(window)
        if page is None or not page.serves(after_seq, last_seq, limit):
            try:
                page = await self._read(window, after_seq, last_seq, max(limit, READ_AHEAD))
            except (TimeoutError, NatsError) as exc:
                raise translate(exc, "archive read") from exc
            self._pages[window] = page
        self._pages.move_to_end(window)
        while len(self._pages) > PAGES_KEPT:
            self._pages.popitem(last=False)
        return page.take(after_seq, last_seq, limit)

    async def events(self, seqs: Sequence[int]) -> list[ArchivedEvent]:
        """The archived events ``seqs`` still kept, in their order (those removed meanwhile are left
        out): from a read-ahead when there, else one read of the stream's leader each."""
        held = {e.seq: e for page in self._pages.values() for e in page.events}
        found: list[ArchivedEvent] = []
        for seq in seqs:
            event = held.get(seq)
            if event is None:
                try:
                    raw = await self._jsc().get_msg(self.names.archive_stream, seq)
                except NotFoundError:
                    continue
                except (TimeoutError, NatsError) as exc:
                    raise translate(exc, "archive read") from exc
                event = archived_of(seq, dict(raw.headers or {}), raw.data or b"")
            found.append(event)
        return found

    # -- internals -------------------------------------------------------------------------------
    async def _read(self, window: Window, after_seq: int, last_seq: int, want: int) -> _Page:
        events: list[ArchivedEvent] = []
        async with self._scan(window, start_seq=after_seq + 1, headers_only=False) as scan:
            while len(events) < want:
                msgs = await scan.batch(want - len(events))
                if not msgs:  # the end of the stream: everything stored up to the last one read is here
                    await scan.ended(last_seq)
                    break
                for msg in msgs:
                    seq = msg.metadata.sequence.stream
                    if seq > last_seq:
                        return _Page(after_seq, last_seq, events)
                    event = archived_of(seq, msg.headers or {}, msg.data)
                    if _within(event, window):
                        events.append(event)
            return _Page(after_seq, min(last_seq, scan.position - 1), events)

    async def _received_at(self, seq: int) -> float | None:
        """The receivedAt of the first event kept at or after ``seq``."""
        try:
            raw = await self._jsc().get_msg(
                self.names.archive_stream, seq, subject=self.names.archive_subjects()[0], next=True
            )
        except NotFoundError:
            return None
        return archived_of(seq, dict(raw.headers or {}), b"").received_at

    def _scan(
        self,
        window: Window,
        *,
        start_seq: int | None = None,
        start_time: float | None = None,
        headers_only: bool = True,
    ) -> Scan:
        subject = self.names.archive_filter(window.source, window.call_type)
        return Scan(
            self._client(),
            self._jsc(),
            self.names.archive_stream,
            subject,
            start_seq=start_seq,
            start_time=start_time,
            headers_only=headers_only,
        )

    def _client(self) -> Client:
        return started(self._nc, "the JetStream archive")

    def _jsc(self) -> JetStreamContext:
        return started(self._js, "the JetStream archive")


@dataclass(frozen=True, slots=True)
class _Page:
    """What one read found: every event of its window with ``after < seq <= covered``."""

    after: int
    covered: int
    events: list[ArchivedEvent]

    def serves(self, after_seq: int, last_seq: int, limit: int) -> bool:
        if after_seq < self.after:
            return False
        return self.covered >= last_seq or sum(1 for e in self.events if e.seq > after_seq) >= limit

    def take(self, after_seq: int, last_seq: int, limit: int) -> list[ArchivedEvent]:
        return [e for e in self.events if after_seq < e.seq <= last_seq][:limit]


def _within(event: ArchivedEvent, window: Window) -> bool:
    return window.since <= event.received_at <= window.until
