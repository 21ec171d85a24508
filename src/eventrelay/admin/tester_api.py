"""``POST /api/v1/destinations/{name}/send``: the Event Tester over HTTP (the page's "Send test event").

Body (every field optional): ``{"type": "track", "event": "Test Event", "user_id": "...",
"properties": {...}, "source": "..."}``. The test event goes through the running destination
instance straight away (no queue, no retry, not in the delivery log); the answer is
``{"sent", "message", "you_sent", "request", "response"}`` as ``eventrelay send --json`` prints it.
A bad body field is a 422 naming it; an unknown destination a 404.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from eventrelay.admin.config_problems import ApiProblem, guarded, invalid, json_body, no_extra
from eventrelay.admin.event_tester import EventSpec, build_event, send_test_event
from eventrelay.awsiam.check import check_source
from eventrelay.core.errors import PayloadError
from eventrelay.core.spec import CALL_TYPES

FIELDS = {"type", "event", "user_id", "properties", "source"}
MAX_NAME = 200  # characters of a test event's name or userId: a person types them


def routes(runtime: Any) -> list[BaseRoute]:
    async def endpoint(request: Request) -> Response:
        return await send(request, runtime)

    return [Route("/api/v1/destinations/{name:str}/send", guarded(endpoint, runtime), methods=["POST"])]


async def send(request: Request, runtime: Any) -> Response:
    name = str(request.path_params["name"])
    dest = runtime.destination_config(name)
    instance = runtime.destinations.get(name)
    if dest is None or instance is None:
        raise ApiProblem(404, "not_found", f"no destination named {name!r}")
    raw = await request.body()
    body = await json_body(request) if raw.strip() else {}
    no_extra(body, FIELDS, f"a test event takes {', '.join(sorted(FIELDS))}")
    spec = _spec(body)
    try:
        event = build_event(spec)
    except PayloadError as exc:
        raise invalid(exc.field or "event", str(exc)) from None
    source = check_source(runtime.config, dest, _text(body, "source", None))
    return JSONResponse(await send_test_event(instance, dest, event, source=source))


def _spec(body: dict[str, Any]) -> EventSpec:
    call_type = _text(body, "type", "track")
    if call_type not in CALL_TYPES:
        raise invalid("type", f"must be one of {', '.join(CALL_TYPES)}")
    properties = body.get("properties", {})
    if not isinstance(properties, dict):
        raise invalid("properties", "must be a JSON object")
    defaults = EventSpec()
    return EventSpec(
        call_type=call_type,
        name=_text(body, "event", defaults.name) or defaults.name,
        user_id=_text(body, "user_id", defaults.user_id) or defaults.user_id,
        properties=properties,
    )


def _text(body: dict[str, Any], key: str, default: str | None) -> Any:
    value = body.get(key, default)
    if value is not None and (not isinstance(value, str) or len(value) > MAX_NAME):
        raise invalid(key, f"must be a string of at most {MAX_NAME} characters")
    return value
