"""The replay API's part of ``/openapi.json`` (``admin/replay_api.py``): archive, replays, cancel."""

from __future__ import annotations

from typing import Any

from eventrelay.core.spec import CALL_TYPES
from eventrelay.deliverylog.stats import STATUSES

_ERROR = {"$ref": "#/components/responses/Error"}
_TIME = {
    "type": ["string", "number"],
    "description": "epoch seconds, ISO 8601, or a duration back from now (10m, 1h, 7d)",
}
_NAME = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
_REPLAY_ID = {"name": "replay", "in": "path", "required": True, "schema": {"type": "string"}}
_NUM = {"type": ["number", "null"]}
_TEXT = {"type": ["string", "null"]}

REQUEST = {
    "type": "object",
    "additionalProperties": False,
    "required": ["since"],
    "properties": {
        "since": _TIME,
        "until": _TIME,
        "source": {"type": "string", "minLength": 1},
        "type": {"type": "string", "enum": list(CALL_TYPES)},
        "event": {"type": "string", "minLength": 1},
        "where": {"type": "string", "minLength": 1, "description": "FQL condition, as destination filters"},
        "share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "dry_run": {"type": "boolean"},
    },
}
REPLAY = {
    "type": "object",
    "required": ["id", "destination", "state", "progress", "counts"],
    "properties": {
        "id": {"type": "string"},
        "destination": {"type": "string"},
        "state": {"type": "string", "enum": ["running", "done", "cancelled"]},
        "since": {"type": "number"},
        "until": {"type": "number"},
        "source": _TEXT,
        "type": _TEXT,
        "event": _TEXT,
        "where": _TEXT,
        "max_in_flight": {"type": "integer"},
        "events_in_window": {"type": "integer"},
        "considered": {"type": "integer"},
        "enqueued": {"type": "integer"},
        "skipped": {"type": "integer"},
        "waiting": {"type": "integer"},
        "dead_lettered": {"type": "integer"},
        "progress": {"type": "number", "minimum": 0, "maximum": 1},
        "counts": {"type": "object", "properties": {s: {"type": "integer"} for s in STATUSES}},
        "created_at": {"type": "number"},
        "finished_at": _NUM,
    },
}
DRY_RUN = {
    "type": "object",
    "required": ["matched", "events_in_window", "window", "note"],
    "properties": {
        "destination": {"type": "string"},
        "since": {"type": "number"},
        "until": {"type": "number"},
        "window": {"type": "object", "properties": {"since": {"type": "number"}, "until": {"type": "number"}}},
        "events_in_window": {"type": "integer"},
        "matched": {"type": "integer"},
        "first_at": _NUM,
        "last_at": _NUM,
        "note": {"type": ["string", "null"], "description": "why the window is shorter than asked"},
    },
}
ARCHIVE = {
    "type": "object",
    "required": ["enabled"],
    "properties": {
        "enabled": {"type": "boolean"},
        "events": {"type": "integer"},
        "bytes": {"type": "integer"},
        "size": {"type": "string"},
        "oldest": _NUM,
        "newest": _NUM,
        "retention_seconds": {"type": "number"},
        "max_bytes": {"type": "integer"},
        "pruned_until": _NUM,
        "note": {"type": "string"},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _op(summary: str, op_id: str, responses: dict[str, Any], params: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "summary": summary,
        "operationId": op_id,
        "tags": ["replay"],
        "security": [{"adminToken": []}],
        "parameters": params,
        "responses": {**responses, "401": _ERROR},
    }


def replay_paths() -> dict[str, Any]:
    base = "/api/v1/destinations/{name}/replays"
    one = {"type": "object", "properties": {"replay": REPLAY}}
    listed = {"type": "object", "required": ["replays"], "properties": {"replays": {"type": "array", "items": REPLAY}}}
    start = _op(
        "Start a replay of archived events into the destination (or count them: dry_run)",
        "startReplay",
        {
            "200": _json({"type": "object", "properties": {"dry_run": DRY_RUN}}, "the dry run"),
            "202": _json(one, "the replay, started"),
            "400": _ERROR, "404": _ERROR, "409": _ERROR, "413": _ERROR, "422": _ERROR,
        },
        [_NAME],
    )  # fmt: skip
    start["requestBody"] = {"required": True, "content": {"application/json": {"schema": REQUEST}}}
    found = {"200": _json(REPLAY, "the replay"), "404": _ERROR}
    archive = _op("What the archive holds", "getArchive", {"200": _json(ARCHIVE, "the archive")}, [])
    replays = _op("The destination's replays, newest first", "listReplays",
                  {"200": _json(listed, "replays"), "404": _ERROR}, [_NAME])  # fmt: skip
    return {
        "/api/v1/archive": {"get": archive},
        base: {"post": start, "get": replays},
        base + "/{replay}": {"get": _op("A replay's progress and counts", "getReplay", found, [_NAME, _REPLAY_ID])},
        base + "/{replay}/cancel": {
            "post": _op("Cancel a replay", "cancelReplay", {**found, "409": _ERROR}, [_NAME, _REPLAY_ID])
        },
    }
