"""The Event Delivery admin API (DESIGN.md section 7): deliveries, attempts, stats, samples, redrive.

Every route needs ``Authorization: Bearer <admin token>`` (401 JSON without). Errors are JSON:
``{"error": {"code": ..., "message": ..., "param": ...}}``; 404 for an unknown destination or
event, 422 for a bad parameter (named in ``param``). Answers never carry a secret: samples are
built from what the destination recorded (no credentials) and scrubbed once more.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from eventrelay.admin.auth import check
from eventrelay.core.outcome import Category
from eventrelay.core.records import error_text
from eventrelay.delivery.redrive import REDRIVABLE, RedriveFilter, redrive, redrive_summary
from eventrelay.deliverylog.stats import (
    STATUSES,
    attempt_json,
    parse_when,
    sample_json,
    stats_json,
    time_range,
)
from eventrelay.queue.base import BlockedLane, OrderedQueue

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000  # rows per deliveries answer: keeps one response well under a few MB
MAX_SAMPLES = 50  # samples per category per answer (each may carry a 32 KB event)
MAX_REDRIVE_IDS = 100_000  # message ids in one redrive request body
MAX_REDRIVE_BODY = 8 * 1024 * 1024  # bytes of a redrive request body (100k ids of 64 chars fit)
MAX_BLOCKED_LANES = 20  # blocked user lanes listed per destination (most events first)

Handler = Callable[[Request, Any], Awaitable[Response]]


class BadParam(Exception):
    def __init__(self, param: str, message: str) -> None:
        self.param = param
        super().__init__(message)


class NotFound(Exception):
    pass


def routes(runtime: Any) -> list[BaseRoute]:
    def bind(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            denied = check(request, runtime)
            if denied is not None:
                return denied
            try:
                return await handler(request, runtime)
            except BadParam as exc:
                return _error(422, "invalid_parameter", str(exc), param=exc.param)
            except NotFound as exc:
                return _error(404, "not_found", str(exc))

        return endpoint

    return [
        Route("/api/v1/deliveries", bind(list_deliveries), methods=["GET"]),
        Route("/api/v1/deliveries/{message_id}", bind(get_delivery), methods=["GET"]),
        Route("/api/v1/destinations", bind(list_destinations), methods=["GET"]),
        Route("/api/v1/destinations/{name}/stats", bind(destination_stats), methods=["GET"]),
        Route("/api/v1/destinations/{name}/samples", bind(destination_samples), methods=["GET"]),
        Route("/api/v1/destinations/{name}/redrive", bind(redrive_destination), methods=["POST"]),
    ]


# -- handlers ---------------------------------------------------------------------------------------
async def list_deliveries(request: Request, runtime: Any) -> Response:
    q = request.query_params
    now = time.time()
    rows = await runtime.log.deliveries(
        destination=q.get("destination") or None,
        category=_category(q.get("category")),
        status=_status(q.get("status")),
        since=_when("since", q.get("since"), now),
        until=_when("until", q.get("until"), now),
        limit=_int("limit", q.get("limit"), DEFAULT_LIMIT, 1, MAX_LIMIT),
    )
    return _json({"deliveries": [r.to_json() for r in rows]})


async def get_delivery(request: Request, runtime: Any) -> Response:
    message_id = request.path_params["message_id"]
    destination = request.query_params.get("destination") or None
    found = await runtime.log.attempts(message_id, destination)
    if not found:
        raise NotFound(f"no delivery attempts recorded for message {message_id!r}")
    return _json({"message_id": message_id, "attempts": [attempt_json(a) for a in found]})


async def list_destinations(request: Request, runtime: Any) -> Response:
    q = request.query_params
    since, until = _range(q.get("range"), q.get("since"), q.get("until"))
    out = []
    for dest in runtime.config.destinations:
        stats = await runtime.log.stats(dest.name, since, until)
        lat = stats.latency
        out.append(
            {
                "name": dest.name,
                "type": dest.type,
                "enabled": dest.enabled,
                **dest.kind.summary(dest.settings),  # e.g. aws_lambda's "function"
                "counts": stats.counts,
                "latency_ms": {"count": lat.count, "p50": lat.p50_ms, "p95": lat.p95_ms, "p99": lat.p99_ms},
                "queue_depth": await runtime.queue.depth(dest.name),
                **await _delivery_state(runtime, dest),
            }
        )
    return _json({"since": since, "until": until, "destinations": out})


async def destination_stats(request: Request, runtime: Any) -> Response:
    dest = _destination(request, runtime)
    q = request.query_params
    since, until = _range(q.get("range"), q.get("since"), q.get("until"))
    stats = await runtime.log.stats(dest.name, since, until)
    body = stats_json(stats, external_id=runtime.config.external_id_for(None), timeout_s=dest.delivery.timeout)
    body["queue_depth"] = await runtime.queue.depth(dest.name)
    body.update(await _delivery_state(runtime, dest))
    return _json(body)


async def destination_samples(request: Request, runtime: Any) -> Response:
    dest = _destination(request, runtime)
    q = request.query_params
    category = _category(q.get("category"))
    limit = _int("limit", q.get("limit"), 3, 1, MAX_SAMPLES)
    found = await runtime.log.samples(dest.name, category, limit)
    return _json({"destination": dest.name, "samples": [sample_json(s) for s in found]})


async def redrive_destination(request: Request, runtime: Any) -> Response:
    dest = _destination(request, runtime)
    wanted = _redrive_filter(await _body(request), time.time())
    moved = await redrive(runtime.queue, runtime.log, dest.name, wanted, now=time.time())
    if moved and runtime.engine is not None:
        runtime.engine.notify((dest.name,))
    return _json({"destination": dest.name, "redriven": moved, "message": redrive_summary(dest.name, moved, wanted)})


async def _delivery_state(runtime: Any, dest: Any) -> dict[str, Any]:
    """What delivery holds for ``dest`` now: ``flow``, the adaptive in-flight limit of each
    function (``delivery/flow.py``; only from a process that delivers), and for ``ordering: user``
    the user lanes blocked behind an event being retried, with how many events each holds."""
    state: dict[str, Any] = {"ordering": dest.ordering}
    engine = runtime.engine
    status = engine.status().get(dest.name) if engine is not None else None
    if status is not None:
        state["flow"] = status["flow"]
    if dest.ordering == "user" and isinstance(runtime.queue, OrderedQueue):
        blocked = await runtime.queue.blocked_lanes(dest.name, MAX_BLOCKED_LANES)
        state["lanes"] = {"blocked": [await _lane_json(runtime, dest.name, lane) for lane in blocked]}
    return state


async def _lane_json(runtime: Any, destination: str, lane: BlockedLane) -> dict[str, Any]:
    attempts = await runtime.log.attempts(lane.head_message_id, destination)
    last = attempts[-1] if attempts else None
    key, _, user = lane.lane.partition(":")
    return {
        "lane": lane.lane,
        "user": user,
        "key": {"u": "userId", "a": "anonymousId"}.get(key, key),
        "events": lane.events,
        "head_message_id": lane.head_message_id,
        "head_attempts": lane.head_attempts,
        "head_category": str(last.category) if last is not None else None,
        "head_error": error_text(last) if last is not None else None,
        "next_attempt_at": lane.next_attempt_at,
    }


# -- parameters -------------------------------------------------------------------------------------
def _destination(request: Request, runtime: Any) -> Any:
    name = request.path_params["name"]
    dest = runtime.destination_config(name)
    if dest is None:
        raise NotFound(f"unknown destination {name!r}")
    return dest


def _category(value: str | None) -> str | None:
    if not value:
        return None
    if value not in {str(c) for c in Category}:
        raise BadParam("category", f"category: must be one of {', '.join(str(c) for c in Category)}")
    return value


def _status(value: str | None) -> str | None:
    if not value:
        return None
    if value not in STATUSES:
        raise BadParam("status", f"status: must be one of {', '.join(STATUSES)}")
    return value


def _when(param: str, value: str | None, now: float) -> float | None:
    if not value:
        return None
    try:
        return parse_when(value, now)
    except ValueError as exc:
        raise BadParam(param, f"{param}: {exc}") from exc


def _int(param: str, value: str | None, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        number = low - 1
    if not low <= number <= high:
        raise BadParam(param, f"{param}: must be an integer from {low} to {high}")
    return number


def _range(name: str | None, since: str | None, until: str | None) -> tuple[float, float]:
    try:
        return time_range(name or None, since or None, until or None, time.time())
    except ValueError as exc:
        param = str(exc).partition(":")[0]
        raise BadParam(param, str(exc)) from exc


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > MAX_REDRIVE_BODY:
        raise BadParam("body", f"body: at most {MAX_REDRIVE_BODY} bytes")
    if not raw.strip():
        return {}
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadParam("body", "body: must be a JSON object") from exc
    if not isinstance(body, dict):
        raise BadParam("body", "body: must be a JSON object")
    unknown = sorted(set(body) - {"message_ids", "category", "since", "until", "status"})
    if unknown:
        raise BadParam(
            unknown[0], f"{unknown[0]}: unknown field (allowed: message_ids, category, since, until, status)"
        )
    return body


def _redrive_filter(body: dict[str, Any], now: float) -> RedriveFilter:
    ids = body.get("message_ids")
    if ids is not None and (not isinstance(ids, list) or not all(isinstance(i, str) for i in ids)):
        raise BadParam("message_ids", "message_ids: must be a list of strings")
    if ids is not None and len(ids) > MAX_REDRIVE_IDS:
        raise BadParam("message_ids", f"message_ids: at most {MAX_REDRIVE_IDS} per request")
    for param in ("category", "since", "until"):
        if body.get(param) is not None and not isinstance(body[param], str | int | float):
            raise BadParam(param, f"{param}: must be a string")
    category = _category(str(body["category"])) if body.get("category") is not None else None
    since = _when("since", str(body["since"]), now) if body.get("since") is not None else None
    until = _when("until", str(body["until"]), now) if body.get("until") is not None else None
    return RedriveFilter(message_ids=ids, category=category, since=since, until=until, statuses=_states(body))


def _states(body: dict[str, Any]) -> tuple[str, ...] | None:
    """``status``: one state a redrive moves, or a list of them (None: all of them)."""
    given = body.get("status")
    if given is None:
        return None
    states = [given] if isinstance(given, str) else given
    if not isinstance(states, list) or not states or not all(s in REDRIVABLE for s in states):
        raise BadParam("status", f"status: one of {', '.join(REDRIVABLE)}, or a non-empty list of them")
    return tuple(dict.fromkeys(states))


def _json(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def _error(status: int, code: str, message: str, *, param: str | None = None) -> JSONResponse:
    error: dict[str, Any] = {"code": code, "message": message}
    if param is not None:
        error["param"] = param
    return JSONResponse({"error": error}, status_code=status)
