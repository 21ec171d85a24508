"""The Config API's answers other than success, and reading its request bodies.

Every refusal is ``{"error": {"code", "message"[, "errors"]}}``; a 422 lists each wrong field
(relative to the entity: ``settings.region``) with what is wrong, as configuration errors do.
``guarded`` puts a handler behind the admin token and answers its refusals so (the Config API,
the Event Tester, replays).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from eventrelay.admin.auth import check as auth_check
from eventrelay.core.errors import ConfigError, EventRelayError, ReplayError

MAX_BODY_BYTES = 64 * 1024  # a destination's settings fit in a few KB; bigger bodies are refused

Handler = Callable[[Request], Awaitable[Response]]


class ApiProblem(Exception):
    """An answer other than success: status, code and message (and per-field errors for 422)."""

    def __init__(self, status: int, code: str, message: str, errors: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def response(self) -> JSONResponse:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.errors is not None:
            error["errors"] = self.errors
        return JSONResponse({"error": error}, status_code=self.status)


def invalid(field: str, message: str) -> ApiProblem:
    """A 422 for one field of the entity."""
    return ApiProblem(422, "invalid_config", f"{field}: {message}", [{"field": field, "message": message}])


def validation_problem(errors: list[ConfigError], section: str, entries: list[dict[str, Any]], name: str) -> ApiProblem:
    """A 422 from the errors of validating the whole configuration, with field paths made relative
    to the entity ``name`` of ``section`` (``destinations[1].settings.region`` -> ``settings.region``)."""
    index = next((i for i, e in enumerate(entries) if e.get("name") == name), None)
    prefix = f"{section}[{index}]" if index is not None else section
    out = []
    for err in errors:
        path, message = err.path, err.message
        if not path and message.startswith(prefix):  # model-level rules put the path in the message
            path, _, message = message.partition(": ")
        field = path[len(prefix) + 1 :] if path.startswith(prefix + ".") else "" if path == prefix else path
        out.append({"field": field, "message": message})
    summary = "; ".join(f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in out)
    return ApiProblem(422, "invalid_config", summary, out)


def no_extra(body: dict[str, Any], allowed: set[str], why: str) -> None:
    """Refuse a key of ``body`` outside ``allowed``, saying ``why``."""
    for key in body:
        if key not in allowed:
            raise invalid(key, f"unknown key (not allowed here): {why}")


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object; 413 over ``MAX_BODY_BYTES``, 400 for anything but an object."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise ApiProblem(413, "too_large", f"the body is {len(raw)} bytes; at most {MAX_BODY_BYTES} are accepted")
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise ApiProblem(400, "invalid_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiProblem(400, "invalid_json", "the body must be a JSON object")
    return body


def guarded(handler: Handler, runtime: Any) -> Handler:
    """``handler`` behind the admin token (401 without), its ``ApiProblem`` answered as JSON, a
    ``ReplayError`` with its status (404 ``not_found``, else ``conflict``) and any other eventrelay
    error as a 500 with its message."""

    async def endpoint(request: Request) -> Response:
        denied = auth_check(request, runtime)
        if denied is not None:
            return denied
        try:
            return await handler(request)
        except ApiProblem as problem:
            return problem.response()
        except ReplayError as exc:
            code = "not_found" if exc.status == 404 else "conflict"
            return ApiProblem(exc.status, code, str(exc)).response()
        except EventRelayError as exc:
            return ApiProblem(500, "internal", str(exc)).response()

    return endpoint
