"""``GET /metrics``: Prometheus text format of ``eventrelay.telemetry.REGISTRY``.

Open by default, as Prometheus scrapers expect; ``admin.metrics_require_token: true`` makes it
need the admin bearer token like the API. The queue-depth and archive gauges are refreshed on each
scrape.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from eventrelay.admin.auth import check
from eventrelay.core import telemetry
from eventrelay.core.errors import StorageError
from eventrelay.queue.archive import ArchiveQueue

log = logging.getLogger("eventrelay.admin")
# The classic text exposition format: what generate_latest() writes and every scraper reads.
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def routes(runtime: Any) -> list[BaseRoute]:
    async def metrics(request: Request) -> Response:
        if runtime.config.admin.metrics_require_token:
            denied = check(request, runtime)
            if denied is not None:
                return denied
        await _refresh_queue_depth(runtime)
        await _refresh_archive(runtime)
        return Response(generate_latest(telemetry.REGISTRY), media_type=CONTENT_TYPE)

    return [Route("/metrics", metrics, methods=["GET"])]


async def _refresh_queue_depth(runtime: Any) -> None:
    for dest in runtime.config.destinations:
        try:
            telemetry.queue_depth(dest.name, await runtime.queue.depth(dest.name))
        except StorageError:  # a scrape still answers with the other metrics
            log.warning("could not read the queue depth of %s for /metrics", dest.name)


async def _refresh_archive(runtime: Any) -> None:
    if not isinstance(runtime.queue, ArchiveQueue):
        return
    try:
        info = await runtime.queue.archive_info()
    except StorageError:
        log.warning("could not read the archive's size for /metrics")
        return
    telemetry.archive_size(info.events, info.bytes)
