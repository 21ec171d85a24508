"""Replays and the archive over HTTP (bearer token), the same as ``eventrelay replay``:

    GET  /api/v1/archive                                    what the archive holds (size, oldest, limits)
    POST /api/v1/destinations/{name}/replays                {since, until?, source?, type?, event?, where?,
                                                             share?, dry_run?}: 202 {"replay": ...} with its
                                                             id, or 200 {"dry_run": ...} (count, time range,
                                                             why the window is shorter)
    GET  /api/v1/destinations/{name}/replays                {"replays": [...]} newest first
    GET  /api/v1/destinations/{name}/replays/{id}           progress and counts by state
    POST /api/v1/destinations/{name}/replays/{id}/cancel    stop it; its unsent jobs are removed

Times are epoch seconds, ISO 8601 or a duration back from now (``1h``). A bad field is a 422
naming it (a ``where`` syntax error with its position); an unknown destination or replay a 404;
a replay that cannot run (the archive is off, the destination disabled) a 409.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from eventrelay.admin.config_problems import ApiProblem, guarded, invalid, json_body, no_extra
from eventrelay.core.errors import ExpressionError
from eventrelay.core.size import format_size
from eventrelay.core.spec import CALL_TYPES
from eventrelay.delivery.replay import ReplayRequest
from eventrelay.delivery.replay_select import Selection
from eventrelay.deliverylog.stats import parse_when
from eventrelay.filters.fql_parser import parse
from eventrelay.queue.archive import ArchiveQueue, Window

FIELDS = {"since", "until", "source", "type", "event", "where", "share", "dry_run"}
MAX_TEXT = 4_096  # characters of a name or condition in a replay request

Handler = Callable[[Request, Any], Awaitable[Response]]


def routes(runtime: Any) -> list[BaseRoute]:
    def bind(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        return guarded(lambda request: handler(request, runtime), runtime)

    base = "/api/v1/destinations/{name:str}/replays"
    return [
        Route("/api/v1/archive", bind(archive), methods=["GET"]),
        Route(base, bind(create), methods=["POST"]),
        Route(base, bind(listed), methods=["GET"]),
        Route(base + "/{replay:str}", bind(shown), methods=["GET"]),
        Route(base + "/{replay:str}/cancel", bind(cancel), methods=["POST"]),
    ]


async def archive(request: Request, runtime: Any) -> Response:
    queue = runtime.queue
    if not isinstance(queue, ArchiveQueue):
        return JSONResponse({"enabled": False, "note": "this storage backend keeps no archive"})
    info = await queue.archive_info()
    return JSONResponse(
        {
            "enabled": info.enabled,
            "events": info.events,
            "bytes": info.bytes,
            "size": format_size(info.bytes),
            "oldest": info.oldest,
            "newest": info.newest,
            "retention_seconds": info.retention,
            "max_bytes": info.max_bytes,
            "pruned_until": info.pruned_until,
        }
    )


async def create(request: Request, runtime: Any) -> Response:
    body = await _body(request)
    replay = _request(str(request.path_params["name"]), body, time.time())
    if body.get("dry_run") is True:
        plan = await runtime.replays.dry_run(replay)
        return JSONResponse({"dry_run": plan.to_json()})
    record = await runtime.replays.start(replay)
    return JSONResponse({"replay": await runtime.replays.progress(record)}, status_code=202)


async def listed(request: Request, runtime: Any) -> Response:
    name = _known(request, runtime)
    records = await runtime.replays.list(name)
    return JSONResponse({"replays": [await runtime.replays.progress(r) for r in records]})


async def shown(request: Request, runtime: Any) -> Response:
    record = await _replay(request, runtime)
    return JSONResponse(await runtime.replays.progress(record))


async def cancel(request: Request, runtime: Any) -> Response:
    record = await _replay(request, runtime)
    return JSONResponse(await runtime.replays.progress(await runtime.replays.cancel(record.id)))


# -- reading requests ---------------------------------------------------------------------------------
async def _body(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    no_extra(body, FIELDS, f"a replay takes {', '.join(sorted(FIELDS))}")
    return body


def _request(destination: str, body: dict[str, Any], now: float) -> ReplayRequest:
    if body.get("since") is None:
        raise invalid("since", "is required: where the window starts (1h, epoch seconds or ISO 8601)")
    since = _time(body, "since", now)
    until = _time(body, "until", now) if body.get("until") is not None else now
    if not since < until:
        raise invalid("since", "must be before until")
    call_type = _text(body, "type")
    if call_type is not None and call_type not in CALL_TYPES:
        raise invalid("type", f"must be one of {', '.join(CALL_TYPES)}")
    where = _text(body, "where")
    if where is not None:
        try:
            parse(where)
        except ExpressionError as exc:
            raise invalid("where", exc.message) from None
    share = body.get("share")
    if share is not None and (not isinstance(share, int | float) or isinstance(share, bool) or not 0 < share <= 1):
        raise invalid("share", "must be a number above 0 and at most 1 (of the destination's concurrency)")
    if body.get("dry_run") is not None and not isinstance(body["dry_run"], bool):
        raise invalid("dry_run", "must be true or false")
    window = Window(since, until, _text(body, "source"), call_type)
    return ReplayRequest(destination, window, Selection(_text(body, "event"), where), share)


def _time(body: dict[str, Any], key: str, now: float) -> float:
    value = body[key]
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise invalid(key, "must be a time: epoch seconds, ISO 8601 or a duration back like 1h")
    try:
        return parse_when(str(value), now)
    except ValueError as exc:
        raise invalid(key, str(exc)) from None


def _text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is not None and (not isinstance(value, str) or not value or len(value) > MAX_TEXT):
        raise invalid(key, f"must be a non-empty string of at most {MAX_TEXT} characters")
    return value


def _known(request: Request, runtime: Any) -> str:
    name = str(request.path_params["name"])
    if runtime.destination_config(name) is None:
        raise ApiProblem(404, "not_found", f"no destination named {name!r}")
    return name


async def _replay(request: Request, runtime: Any) -> Any:
    name = _known(request, runtime)
    record = await runtime.replays.get(str(request.path_params["replay"]))
    if record.destination != name:
        raise ApiProblem(404, "not_found", f"destination {name!r} has no replay {record.id}")
    return record
