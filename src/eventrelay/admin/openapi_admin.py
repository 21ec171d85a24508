"""The admin API's part of ``/openapi.json``: deliveries, destinations, stats, samples, redrive,
the Event Tester."""

from __future__ import annotations

from typing import Any

from eventrelay.core.outcome import Category
from eventrelay.core.spec import CALL_TYPES
from eventrelay.delivery.redrive import REDRIVABLE
from eventrelay.deliverylog.stats import RANGES, STATUSES


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


def admin_paths() -> dict[str, Any]:
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
                "Recent attempts: You sent / Request / Response (failures; category=delivered: successes)",
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
                "Re-queue failed/discarded events and make retrying ones due now (all, or filtered)",
                "redrive",
                "RedriveResult",
                not_found=True,
                params=[name],
                body={"$ref": "#/components/schemas/RedriveRequest"},
            )
        },
        "/api/v1/destinations/{name}/send": {
            "post": _admin_op(
                "Event Tester: send a test event now (not queued, not recorded)",
                "sendTestEvent",
                "TestEventResult",
                not_found=True,
                params=[name],
                body={"$ref": "#/components/schemas/TestEventRequest"},
            )
        },
    }


def admin_schemas() -> dict[str, Any]:
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
            "filter": {"type": ["string", "null"], "description": "filtered: the destination filter that matched"},
            "replay": {"type": ["string", "null"], "description": "the replay of the latest attempt, if any"},
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
            "filter": {"type": ["string", "null"]},
            "replay": {"type": ["string", "null"]},
            "you_sent": {},
            "request": {"type": "object"},
            "response": {"type": "object"},
            "batch": {
                "type": ["object", "null"],
                "description": "The batch the event travelled in (null: one event per invoke)",
                "properties": {
                    "id": {"type": "string"},
                    "size": {"type": ["integer", "null"]},
                    "bytes": {"type": ["integer", "null"]},
                },
            },
            "warning": {"type": ["string", "null"]},
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
                            "flow": {"$ref": "#/components/schemas/Flow"},
                            "ordering": {"type": "string", "enum": ["none", "user"]},
                            "lanes": {"$ref": "#/components/schemas/Lanes"},
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
                "latency_ms": {**latency, "description": "receipt to delivery, retries included"},
                "first_attempt_latency_ms": {
                    **latency,
                    "description": "the same, over the events delivered by their first attempt",
                },
                "queue_depth": {"type": "integer"},
                "flow": {"$ref": "#/components/schemas/Flow"},
                "ordering": {"type": "string", "enum": ["none", "user"]},
                "lanes": {"$ref": "#/components/schemas/Lanes"},
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
                                    "filtered": {"type": "integer"},
                                    "errors": {"type": "object", "additionalProperties": {"type": "integer"}},
                                },
                            },
                        },
                    },
                },
            },
        },
        "Flow": {
            "type": "array",
            "description": "Per function: the adaptive in-flight limit (only from a process that delivers)",
            "items": {
                "type": "object",
                "properties": {
                    "function": {"type": "string"},
                    "limit": {"type": "integer"},
                    "in_flight": {"type": "integer"},
                    "waiting": {"type": "integer"},
                    "configured": {"type": "integer"},
                    "reserved_concurrency": {"type": ["integer", "null"]},
                    "retry_after_until": {"type": ["number", "null"]},
                },
            },
        },
        "Lanes": {
            "type": "object",
            "description": "ordering: user only: lanes whose oldest event is being retried, holding later events",
            "properties": {
                "blocked": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "lane": {"type": "string"},
                            "user": {"type": "string"},
                            "key": {"type": "string", "enum": ["userId", "anonymousId"]},
                            "events": {"type": "integer"},
                            "head_message_id": {"type": "string"},
                            "head_attempts": {"type": "integer"},
                            "head_category": {"type": ["string", "null"]},
                            "head_error": {"type": ["string", "null"]},
                            "next_attempt_at": {"type": ["number", "null"]},
                        },
                    },
                }
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
                "status": {
                    "description": "only events in this state, or these states (default: all of them)",
                    "oneOf": [
                        {"type": "string", "enum": list(REDRIVABLE)},
                        {"type": "array", "items": {"type": "string", "enum": list(REDRIVABLE)}, "minItems": 1},
                    ],
                },
            },
        },
        "RedriveResult": {
            "type": "object",
            "required": ["redriven"],
            "properties": {
                "destination": {"type": "string"},
                "redriven": {"type": "integer"},
                "message": {"type": "string", "description": "how many moved; when none did, why"},
            },
        },
        "TestEventRequest": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "enum": list(CALL_TYPES), "default": "track"},
                "event": {"type": "string", "maxLength": 200, "description": "track event / page or screen name"},
                "user_id": {"type": "string", "maxLength": 200},
                "properties": {"type": "object", "description": "properties (traits for identify and group)"},
                "source": {"type": "string", "description": "the source it comes from (External ID without workspace)"},
            },
        },
        "TestEventResult": {
            "type": "object",
            "required": ["sent", "you_sent"],
            "properties": {
                "sent": {"type": "boolean", "description": "false: the destination does not take this event"},
                "message": {"type": ["string", "null"]},
                "you_sent": {"type": "object"},
                "request": {"type": ["object", "null"]},
                "response": {"type": ["object", "null"]},
            },
        },
    }
