"""``GET /openapi.json``: the OpenAPI 3.1 document of the Tracking API and the admin API.

Schemathesis fuzzes against it, so it states exactly what the server accepts and answers. This
module holds the Tracking API's part; the admin API's paths and schemas are ``openapi_admin``, the
Config API's ``config_openapi``.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from eventrelay.admin import config_openapi
from eventrelay.admin.openapi_admin import admin_paths, admin_schemas
from eventrelay.admin.openapi_replay import replay_paths
from eventrelay.core.spec import CALL_TYPES, MAX_BATCH_EVENTS, MAX_MESSAGE_ID_CHARS, SHORT_FORMS

OPENAPI_VERSION = "3.1.0"


def routes(runtime: Any) -> list[BaseRoute]:
    body = JSONResponse(document()).body  # the same for every request: built and serialised once

    async def openapi(request: Request) -> Response:
        return Response(body, media_type="application/json")

    return [Route("/openapi.json", openapi, methods=["GET"])]


def document() -> dict[str, Any]:
    paths: dict[str, Any] = {
        **_tracking_paths(),
        **admin_paths(),
        **config_openapi.openapi_paths(),
        **replay_paths(),
    }
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
    schemas.update(admin_schemas())
    return schemas


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
