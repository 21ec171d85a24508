"""The composition root: builds queue, delivery log, destinations, engine and the ASGI app from a Config.

``Runtime`` is what the CLI's ``serve`` runs and what tests start in-process.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from eventrelay.config.model import Config
from eventrelay.config.model import Destination as DestinationConfig
from eventrelay.core.asgi import ASGIApp, Receive, Scope, Send
from eventrelay.delivery.engine import DeliveryEngine, Target
from eventrelay.delivery.intake import QueueSink
from eventrelay.delivery.replay import Replays
from eventrelay.delivery.routing import route
from eventrelay.deliverylog.base import DeliveryLog
from eventrelay.destinations.base import Destination
from eventrelay.ingest.sink import EventSink
from eventrelay.queue.archive import ArchiveQueue
from eventrelay.queue.base import OrderedQueue, Queue
from eventrelay.runtime.build import (
    build_destination,
    data_layout,
    open_log,
    open_queue,
    open_space,
    pause_board,
    per_worker,
)
from eventrelay.storage import datadir, integrity

if TYPE_CHECKING:
    import uvicorn

    from eventrelay.ingest.app import IngestApp

Role = Literal["ingest", "deliver", "all"]
log = logging.getLogger("eventrelay")


class Runtime:
    """Everything one eventrelay process runs, built from one ``Config``. ``workers``: how many
    processes of one deployment share the queue (``serve --workers``): the queue is opened
    shared and each destination runs its share of ``concurrency`` here."""

    def __init__(self, config: Config, *, role: Role = "all", config_file: str | None = None, workers: int = 1) -> None:
        self.config = config
        self.role = role
        self.config_file = config_file  # the file ``config`` was read from, if any (the page names it)
        self.workers = workers
        token = config.admin.token.get_secret_value() if config.admin.token else None
        self.generated_admin_token = token is None
        self.admin_token: str = token or secrets.token_urlsafe(32)
        self.layout = data_layout(config)
        self.space = open_space(config)  # free-space floor, bounded WAL, reserve (storage/space.py)
        self.queue: Queue = open_queue(config, self.space, shared=workers > 1)
        self.log: DeliveryLog = open_log(config, self.space)
        self.destinations: dict[str, Destination] = {}
        self.engine: DeliveryEngine | None = None
        self.sink: EventSink = QueueSink(self.queue)  # the Tracking API's hand-off (ingest.sink.EventSink)
        self.replays = Replays(self.queue, self.log, self, self._notify)  # delivery/replay.py
        self._sources_by_key: dict[str, str] = {}
        self._apply_sources(config)

    # -- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Check the data directory (a missing, emptied or damaged store file is refused:
        ``storage/datadir.py``), open the stores (on a nearly full disk too: the space reserve
        gives way), record the layout, hold the reserve, start delivery."""
        layout = self.layout
        # a worker of ``serve --workers``: its parent ran the integrity check before starting it
        integrity_check = layout.integrity_check and self.workers == 1
        await asyncio.to_thread(datadir.check, layout.directory, layout.files, check_integrity=integrity_check)
        if self.space is not None:  # a nearly full disk: the reserve's room lets the files open
            await asyncio.to_thread(self.space.before_start)
        await self.queue.start()
        await self._apply_ordering(self.config)
        await self.log.start()
        await asyncio.to_thread(datadir.write_marker, layout.directory, layout.files, layout.backend)
        if self.space is not None:
            await asyncio.to_thread(self.space.hold_reserve)
        self.destinations = self._build_destinations(self.config)
        if self.role in ("deliver", "all"):
            pauses = pause_board(self.config, self.workers)
            self.engine = DeliveryEngine(self.queue, self.log, self._engine_targets(), pauses=pauses)
            await self.engine.start()
            self.sink = QueueSink(self.queue, self.engine)
            if isinstance(self.queue, ArchiveQueue):
                await self.replays.resume()  # replays a stop interrupted go on where they were

    def stop_claiming(self) -> None:
        """A stop was asked for: deliver nothing new while the server finishes its requests
        (``stop`` then lets the attempts in flight finish and records them)."""
        if self.engine is not None:
            self.engine.stop_claiming()

    async def stop(self) -> None:
        await self.replays.stop()
        if self.engine is not None:
            await self.engine.stop()
        for dest in self.destinations.values():
            await dest.close()
        await self.queue.close()
        await self.log.close()

    async def reconfigure(self, config: Config) -> None:
        """Apply a new configuration (Config API) without a restart."""
        old = self.destinations
        self.config = config
        self._apply_sources(config)
        await self._apply_ordering(config)
        self.destinations = self._build_destinations(config)
        if self.engine is not None:
            await self.engine.set_targets(self._engine_targets())
        for name, dest in old.items():
            await dest.close()
            log.debug("closed destination %s after reconfigure", name)

    # -- what ingest and the admin API ask ----------------------------------------------------
    def health(self) -> dict[str, object]:
        """``/healthz``: ``ok``, or ``unhealthy`` with the store files SQLite reported damaged
        while running and what to do (``storage/integrity.py``)."""
        damaged = integrity.damaged(self.layout.paths())
        if not damaged:
            return {"status": "ok"}
        return {"status": "unhealthy", "damaged": damaged, "what_to_do": integrity.RECOVER_HINT}

    def source_for_key(self, write_key: str) -> str | None:
        """The source name of ``write_key`` (constant-time compare), or None."""
        found = None
        for key, name in self._sources_by_key.items():
            if hmac.compare_digest(key.encode(), write_key.encode()):
                found = name
        return found

    def route(self, source: str, event: Mapping[str, Any]) -> tuple[str, ...]:
        return route(self.config.destinations, self.destinations, source, event)

    def asgi(self, ingest: IngestApp | None = None) -> ASGIApp:
        """The one-port ASGI app: the Tracking API (``ingest``, a new one by default) on ``/v1/``,
        the admin API and page on the rest."""
        from eventrelay.admin.app import build_admin_app

        return one_port(ingest or self._ingest_app(), build_admin_app(self))

    def server_config(self, **settings: Any) -> uvicorn.Config:
        """The uvicorn settings ``serve`` runs with: the one-port app, the connection limits of
        ``ingest`` (head/body/keep-alive time limits, the connection cap: ``ingest/http_limits.py``)
        and, unless ``ingest.fast_path`` is false, the Tracking API's event POSTs answered by
        ``FastIngestProtocol`` (``ingest/fast_http.py``). ``settings``: host, port, and other
        ``uvicorn.Config`` arguments."""
        import uvicorn

        from eventrelay.ingest.fast_http import http_protocol
        from eventrelay.ingest.http_limits import ConnectionLimits, default_max_connections

        options = self.config.ingest
        ingest = self._ingest_app()
        outgoing = sum(d.delivery.concurrency for d in self.config.destinations)  # an fd per attempt in flight
        limits = ConnectionLimits(
            head_timeout=options.head_timeout,
            body_timeout=options.body_timeout,
            max_connections=options.max_connections or default_max_connections(outgoing),
        )
        defaults: dict[str, Any] = {
            "lifespan": "off",
            "access_log": False,
            "log_level": "warning",
            "loop": "none",
            "server_header": False,
            "ws": "none",  # no WebSocket endpoint: an Upgrade is served as plain HTTP
            "timeout_keep_alive": options.keep_alive_timeout,
        }
        return uvicorn.Config(
            self.asgi(ingest),
            http=http_protocol(ingest, limits, fast_path=options.fast_path),
            **{**defaults, **settings},
        )

    def destination_config(self, name: str) -> DestinationConfig | None:
        return next((d for d in self.config.destinations if d.name == name), None)

    # -- internals ----------------------------------------------------------------------------
    def _notify(self, destinations: Iterable[str]) -> None:
        if self.engine is not None:
            self.engine.notify(destinations)

    def _ingest_app(self) -> IngestApp:
        """The Tracking API of this runtime, its settings endpoint pointed as ``ingest`` says."""
        from eventrelay.ingest.app import IngestApp
        from eventrelay.ingest.settings_endpoint import ApiOrigin

        options = self.config.ingest
        return IngestApp(self, ApiOrigin(options.public_url, tuple(options.allowed_hosts)))

    def _build_destinations(self, config: Config) -> dict[str, Destination]:
        return {d.name: build_destination(per_worker(d, self.workers), config) for d in config.destinations}

    def _apply_sources(self, config: Config) -> None:
        self._sources_by_key = {s.write_key.get_secret_value(): s.name for s in config.sources}

    async def _apply_ordering(self, config: Config) -> None:
        """Tell the queue which destinations deliver in per-user order (``ordering: user``)."""
        if isinstance(self.queue, OrderedQueue):
            await self.queue.order_lanes([d.name for d in config.destinations if d.ordering == "user"])
        elif any(d.ordering == "user" for d in config.destinations):
            log.warning("the %s queue keeps no per-user order: ordering: user is ignored", config.storage.backend)

    def _engine_targets(self) -> dict[str, Target]:
        return {
            d.name: Target(self.destinations[d.name], per_worker(d, self.workers).delivery, d.compiled_filters())
            for d in self.config.destinations
            if d.enabled and d.name in self.destinations
        }


def one_port(ingest: ASGIApp, admin: ASGIApp) -> ASGIApp:
    """Route ``/v1/...`` straight to the lean ingest app (no framework on the hot path)."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/v1/"):
            await ingest(scope, receive, send)
        else:
            await admin(scope, receive, send)

    return app
