"""``GET /openapi.json``: the OpenAPI 3.1 document of the Tracking API and the admin API.

Schemathesis fuzzes against it, so it states exactly what the server accepts and answers.
Other admin route modules may add their paths: a module-level ``OPENAPI_PATHS`` dict in
``eventrelay.admin.<module>`` (for example the Config API) is merged in.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from eventrelay.core.outcome import Category
from eventrelay.core.spec import CALL_TYPES, MAX_BATCH_EVENTS, MAX_MESSAGE_ID_CHARS, SHORT_FORMS
from eventrelay.deliverylog.stats import RANGES, STATUSES

OPENAPI_VERSION = "3.1.0"


def routes(runtime: Any) -> list[BaseRoute]:
    async def openapi(request: Request) -> Response:
        return JSONResponse(document())

    return [Route("/openapi.json", openapi, methods=["GET"])]


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {**_tracking_paths(), **_admin_paths()}
    from eventrelay.admin import config_api  # late: config_api's routes import this module's helpers

    paths.update(config_api.OPENAPI_PATHS)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "eventrelay",
            "version": "1",
            "description": "Segment-compatible Tracking API (write key as HTTP Basic user) and the admin API "
            "(Authorization: Bearer <admin token>).",
        },
        "paths": paths,
        "components": {"schemas": _schemas(), "securitySchemes": _security(), "responses": _responses()},
    }


# -- Tracking API -----------------------------------------------------------------------------------
def _tracking_paths() -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for call in (*CALL_TYPES, "batch", "import"):
        schema = "Batch" if call in ("batch", "import") else call.capitalize()
        paths[f"/v1/{call}"] = {"post": _tracking_op(call, schema, "application/json")}
    for short, call in SHORT_FORMS.items():
        schema = "Batch" if call == "batch" else call.capitalize()
        paths[f"/v1/{short}"] = {"post": _tracking_op(f"{call} (browser form)", schema, "text/plain")}
    paths["/v1/projects/{writeKey}/settings"] = {
        "get": {
            "summary": "Settings analytics.js loads (integrations, plan)",
            "operationId": "projectSettings",
            "tags": ["tracking"],
            "parameters": [{"name": "writeKey", "in": "path", "required": True, "schema": {"type": "string"}}],
            "responses": {
                "200": {
                    "description": "settings",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "401": {"$ref": "#/components/responses/Error"},
                "404": {"$ref": "#/components/responses/Error"},
            },
        }
    }
    return paths


def _tracking_op(call: str, schema: str, media: str) -> dict[str, Any]:
    op_id = "track_" + "".join(ch if ch.isalnum() else "_" for ch in call) + "_" + media.split("/")[1]
    body_schema: dict[str, Any] = {"$ref": f"#/components/schemas/{schema}"}
    if media == "text/plain":  # analytics.js sends JSON as text/plain to avoid a CORS preflight
        body_schema = {
            "type": "string",
            "contentMediaType": "application/json",
            "description": f"the JSON of a {schema} call (see components.schemas.{schema})",
        }
    content: dict[str, Any] = {media: {"schema": body_schema}}
    return {
        "summary": f"Segment {call} call",
        "operationId": op_id,
        "tags": ["tracking"],
        "security": [{"writeKey": []}, {}],  # or ``writeKey`` in the body
        "requestBody": {"required": True, "content": content},
        "responses": {
            "200": {
                "description": "durable",
                "content": {
                    "application/json": {"schema": {"type": "object", "properties": {"success": {"type": "boolean"}}}}
                },
            },
            "400": {"$ref": "#/components/responses/Error"},
            "401": {"$ref": "#/components/responses/Error"},
            "413": {"$ref": "#/components/responses/Error"},
            "415": {"$ref": "#/components/responses/Error"},
            "429": {"$ref": "#/components/responses/Error"},
            "503": {"$ref": "#/components/responses/Error"},
        },
    }


def _common_fields() -> dict[str, Any]:
    return {
        "userId": {"type": ["string", "number"]},
        "anonymousId": {"type": ["string", "number"]},
        "messageId": {"type": "string", "maxLength": MAX_MESSAGE_ID_CHARS},
        "timestamp": {"type": "string", "format": "date-time"},
        "sentAt": {"type": "string", "format": "date-time"},
        "originalTimestamp": {"type": "string", "format": "date-time"},
        "context": {"type": "object"},
        "integrations": {"type": "object"},
        "writeKey": {"type": "string"},
    }


def _call_schema(call: str, extra: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": [call]}, **_common_fields(), **extra},
    }
    if required:
        schema["required"] = required
    if call != "alias":
        schema["anyOf"] = [{"required": ["userId"]}, {"required": ["anonymousId"]}]
    return schema


def _schemas() -> dict[str, Any]:
    obj = {"type": "object"}
    schemas: dict[str, Any] = {
        "Track": _call_schema("track", {"event": {"type": "string", "minLength": 1}, "properties": obj}, ["event"]),
        "Identify": _call_schema("identify", {"traits": obj}, []),
        "Page": _call_schema(
            "page", {"name": {"type": "string"}, "category": {"type": "string"}, "properties": obj}, []
        ),
        "Screen": _call_schema("screen", {"name": {"type": "string"}, "properties": obj}, []),
        "Group": _call_schema("group", {"groupId": {"type": ["string", "number"]}, "traits": obj}, ["groupId"]),
        "Alias": _call_schema("alias", {"previousId": {"type": ["string", "number"]}}, ["previousId", "userId"]),
    }
    # One flat schema (not a oneOf of the six calls): the same fields, far cheaper for fuzzers to generate.
    item_fields: dict[str, Any] = {}
    for call in CALL_TYPES:
        item_fields.update(schemas[call.capitalize()]["properties"])
    item_fields["type"] = {"type": "string", "enum": list(CALL_TYPES)}
    schemas["BatchItem"] = {"type": "object", "required": ["type"], "properties": item_fields}
    schemas["Batch"] = {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {
                "type": "array",
                "minItems": 1,
                "maxItems": MAX_BATCH_EVENTS,
                "items": {"$ref": "#/components/schemas/BatchItem"},
            },
            "context": obj,
            "integrations": obj,
            "sentAt": {"type": "string", "format": "date-time"},
            "writeKey": {"type": "string"},
        },
    }
    schemas["Error"] = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "param": {"type": "string"},
                },
            }
        },
    }
    schemas.update(_admin_schemas())
    return schemas


# -- admin API --------------------------------------------------------------------------------------
def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


_TIME = {
    "type": "string",
    "description": "epoch seconds, ISO 8601, or a duration back from now (10m, 1h, 7d)",
}


def _range_params() -> list[dict[str, Any]]:
    return [
        _query("range", {"type": "string", "enum": list(RANGES)}, "named range; default 1h"),
        _query("since", _TIME, "start of a custom range"),
        _query("until", _TIME, "end of a custom range; default now"),
    ]


def _admin_op(
    summary: str,
    op_id: str,
    schema: str,
    *,
    params: list[dict[str, Any]] | None = None,
    not_found: bool = False,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        "200": {
            "description": summary,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
        },
        "401": {"$ref": "#/components/responses/Error"},
        "422": {"$ref": "#/components/responses/Error"},
    }
    if not_found:
        responses["404"] = {"$ref": "#/components/responses/Error"}
    op: dict[str, Any] = {
        "summary": summary,
        "operationId": op_id,
        "tags": ["admin"],
        "security": [{"adminToken": []}],
        "parameters": params or [],
        "responses": responses,
    }
    if body is not None:
        op["requestBody"] = {"required": False, "content": {"application/json": {"schema": body}}}
    return op


def _admin_paths() -> dict[str, Any]:
    name = {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
    category = _query("category", {"type": "string", "enum": [str(c) for c in Category]}, "outcome category")
    return {
        "/api/v1/deliveries": {
            "get": _admin_op(
                "Events x destinations, newest first",
                "listDeliveries",
                "DeliveryList",
                params=[
                    _query("destination", {"type": "string"}, "destination name"),
                    category,
                    _query("status", {"type": "string", "enum": list(STATUSES)}, "state of the event"),
                    _query("since", _TIME, "updated at or after"),
                    _query("until", _TIME, "updated at or before"),
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "rows; default 100"),
                ],
            )
        },
        "/api/v1/deliveries/{message_id}": {
            "get": _admin_op(
                "Every attempt of one event",
                "getDelivery",
                "AttemptList",
                not_found=True,
                params=[
                    {"name": "message_id", "in": "path", "required": True, "schema": {"type": "string"}},
                    _query("destination", {"type": "string"}, "only this destination"),
                ],
            )
        },
        "/api/v1/destinations": {
            "get": _admin_op(
                "Destinations with counts and latency",
                "listDestinations",
                "DestinationList",
                params=_range_params(),
            )
        },
        "/api/v1/destinations/{name}/stats": {
            "get": _admin_op(
                "Counts, latency, error table, time series",
                "destinationStats",
                "Stats",
                not_found=True,
                params=[name, *_range_params()],
            )
        },
        "/api/v1/destinations/{name}/samples": {
            "get": _admin_op(
                "Recent failed attempts: You sent / Request / Response",
                "destinationSamples",
                "SampleList",
                not_found=True,
                params=[
                    name,
                    category,
                    _query("limit", {"type": "integer", "minimum": 1, "maximum": 50}, "per category; default 3"),
                ],
            )
        },
        "/api/v1/destinations/{name}/redrive": {
            "post": _admin_op(
                "Re-queue failed/discarded events (all, or filtered)",
                "redrive",
                "RedriveResult",
                not_found=True,
                params=[name],
                body={"$ref": "#/components/schemas/RedriveRequest"},
            )
        },
    }


def _admin_schemas() -> dict[str, Any]:
    num = {"type": ["number", "null"]}
    categories = [str(c) for c in Category]
    latency = {
        "type": "object",
        "properties": {"count": {"type": "integer"}, "p50": num, "p95": num, "p99": num},
    }
    counts = {"type": "object", "properties": {s: {"type": "integer"} for s in STATUSES}}
    delivery = {
        "type": "object",
        "required": ["message_id", "destination", "function", "category", "attempts", "status", "error"],
        "properties": {
            "message_id": {"type": "string"},
            "destination": {"type": "string"},
            "source": {"type": "string"},
            "type": {"type": "string"},
            "function": {"type": ["string", "null"]},
            "category": {"type": "string", "enum": categories},
            "attempts": {"type": "integer"},
            "status": {"type": "string", "enum": list(STATUSES)},
            "error": {"type": ["string", "null"]},
            "received_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "next_attempt_at": num,
            "delivered_at": num,
        },
    }
    sample = {
        "type": "object",
        "required": ["message_id", "category", "you_sent", "request", "response"],
        "properties": {
            "message_id": {"type": "string"},
            "destination": {"type": "string"},
            "category": {"type": "string", "enum": categories},
            "category_name": {"type": "string"},
            "attempt": {"type": "integer"},
            "at": {"type": "number"},
            "you_sent": {},
            "request": {"type": "object"},
            "response": {"type": "object"},
        },
    }
    return {
        "Delivery": delivery,
        "DeliveryList": {
            "type": "object",
            "required": ["deliveries"],
            "properties": {"deliveries": {"type": "array", "items": {"$ref": "#/components/schemas/Delivery"}}},
        },
        "Sample": sample,
        "SampleList": {
            "type": "object",
            "required": ["samples"],
            "properties": {
                "destination": {"type": "string"},
                "samples": {"type": "array", "items": {"$ref": "#/components/schemas/Sample"}},
            },
        },
        "AttemptList": {
            "type": "object",
            "required": ["attempts"],
            "properties": {
                "message_id": {"type": "string"},
                "attempts": {"type": "array", "items": {"$ref": "#/components/schemas/Sample"}},
            },
        },
        "DestinationList": {
            "type": "object",
            "required": ["destinations"],
            "properties": {
                "since": {"type": "number"},
                "until": {"type": "number"},
                "destinations": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "function": {"type": "string"},
                            "enabled": {"type": "boolean"},
                            "counts": counts,
                            "latency_ms": latency,
                            "queue_depth": {"type": "integer"},
                        },
                    },
                },
            },
        },
        "Stats": {
            "type": "object",
            "required": ["counts", "latency_ms", "errors", "series"],
            "properties": {
                "destination": {"type": "string"},
                "since": {"type": "number"},
                "until": {"type": "number"},
                "counts": counts,
                "latency_ms": latency,
                "queue_depth": {"type": "integer"},
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "category": {"type": "string", "enum": categories},
                            "name": {"type": "string"},
                            "attempts": {"type": "integer"},
                            "events": {"type": "integer"},
                            "description": {"type": "string"},
                            "hint": {"type": "string"},
                        },
                    },
                },
                "series": {
                    "type": "object",
                    "properties": {
                        "bucket_seconds": {"type": "number"},
                        "buckets": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "start": {"type": "number"},
                                    "delivered": {"type": "integer"},
                                    "errors": {"type": "object", "additionalProperties": {"type": "integer"}},
                                },
                            },
                        },
                    },
                },
            },
        },
        "RedriveRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "message_ids": {"type": "array", "items": {"type": "string"}, "maxItems": 100_000},
                "category": {"type": "string", "enum": categories},
                "since": _TIME,
                "until": _TIME,
            },
        },
        "RedriveResult": {
            "type": "object",
            "required": ["redriven"],
            "properties": {"destination": {"type": "string"}, "redriven": {"type": "integer"}},
        },
    }


def _security() -> dict[str, Any]:
    return {
        "writeKey": {"type": "http", "scheme": "basic", "description": "write key as user, empty password"},
        "adminToken": {"type": "http", "scheme": "bearer", "description": "the admin token"},
    }


def _responses() -> dict[str, Any]:
    return {
        "Error": {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    }
