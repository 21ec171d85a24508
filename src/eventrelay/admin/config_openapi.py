"""The OpenAPI description of the Config API's paths, merged into ``/openapi.json`` (admin/openapi.py)."""

from __future__ import annotations

from typing import Any

from eventrelay.admin.config_api import PREFIX
from eventrelay.destinations import registry

_FILTER = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "if": {"type": "string", "description": "FQL condition (default true)"},
        "drop": {"type": "boolean", "enum": [True]},
        "sample": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "drop_properties": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "allow_properties": {"type": "array", "items": {"type": "string"}, "minItems": 1},
    },
}
_CONFIG_FILE = {"type": "string", "description": "read-only: the file that defines it (managed_by file)"}


def openapi_paths() -> dict[str, Any]:
    """The Config API's paths (``type`` lists the registered destination types)."""
    error = {"$ref": "#/components/responses/Error"}
    name_param = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    source = {
        "type": "object",
        "required": ["name", "managed_by"],
        "properties": {
            "name": {"type": "string"},
            "managed_by": {"type": "string", "enum": ["file", "api"]},
            "config_file": _CONFIG_FILE,
            "write_key": {"type": "string", "description": "only in the answer that creates or rotates it"},
        },
    }
    destination = {
        "type": "object",
        "required": ["name", "settings"],
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": list(registry.names())},
            "enabled": {"type": "boolean"},
            "sources": {"type": ["array", "null"], "items": {"type": "string"}},
            "settings": {"type": "object", "description": "the type's settings (aws_lambda: DESIGN.md section 4)"},
            "delivery": {"type": "object"},
            "only": {"type": ["string", "null"], "description": "FQL: send only the events that match"},
            "filters": {"type": "array", "items": _FILTER, "description": "destination filters, in order"},
            "external_id": {"type": ["string", "null"], "description": "read-only: the workspace id"},
            "managed_by": {"type": "string", "enum": ["file", "api"]},
            "config_file": _CONFIG_FILE,
        },
    }
    check = {
        "type": "object",
        "required": ["destination", "ok", "functions"],
        "properties": {
            "destination": {"type": "string"},
            "ok": {"type": "boolean"},
            "functions": {"type": "array", "items": {"type": "object"}},
        },
    }

    def op(
        summary: str,
        op_id: str,
        ok: str,
        schema: dict[str, Any] | None,
        *,
        body: dict[str, Any] | None = None,
        path_name: bool = False,
        errors: tuple[str, ...] = (),
    ) -> dict[str, Any]:
        ok_response: dict[str, Any] = {"description": summary}
        if schema is not None:
            ok_response["content"] = {"application/json": {"schema": schema}}
        out: dict[str, Any] = {
            "summary": summary,
            "operationId": op_id,
            "tags": ["config"],
            "security": [{"adminToken": []}],
            "parameters": name_param if path_name else [],
            "responses": {ok: ok_response, "401": error, **dict.fromkeys(errors, error)},
        }
        if body is not None:
            out["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        return out

    change = ("400", "404", "409", "413", "422")
    listed_sources = {"type": "object", "properties": {"sources": {"type": "array", "items": source}}}
    listed_dests = {"type": "object", "properties": {"destinations": {"type": "array", "items": destination}}}
    new_source = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}
    patch_source = {
        "type": "object",
        "properties": {"name": {"type": "string"}, "rotate_write_key": {"type": "boolean"}},
    }
    return {
        f"{PREFIX}/sources": {
            "get": op("Sources (write keys never shown)", "listSources", "200", listed_sources),
            "post": op(
                "Create a source; its write key is shown once",
                "createSource",
                "201",
                source,
                body=new_source,
                errors=("400", "409", "413", "422"),
            ),
        },
        f"{PREFIX}/sources/{{name}}": {
            "get": op("One source", "getSource", "200", source, path_name=True, errors=("404",)),
            "patch": op(
                "Rotate the write key (shown once)",
                "patchSource",
                "200",
                source,
                body=patch_source,
                path_name=True,
                errors=change,
            ),
            "delete": op(
                "Delete a source created here",
                "deleteSource",
                "204",
                None,
                path_name=True,
                errors=("404", "409"),
            ),
        },
        f"{PREFIX}/destinations": {
            "get": op("Destinations with every setting", "listConfigDestinations", "200", listed_dests),
            "post": op(
                "Create a destination (validated as at start-up)",
                "createDestination",
                "201",
                destination,
                body={"type": "object"},
                errors=("400", "409", "413", "422"),
            ),
        },
        f"{PREFIX}/destinations/{{name}}": {
            "get": op("One destination", "getConfigDestination", "200", destination, path_name=True, errors=("404",)),
            "put": op(
                "Replace a destination created here",
                "replaceDestination",
                "200",
                destination,
                body={"type": "object"},
                path_name=True,
                errors=change,
            ),
            "patch": op(
                "Change a destination created here (JSON merge patch)",
                "patchDestination",
                "200",
                destination,
                body={"type": "object"},
                path_name=True,
                errors=change,
            ),
            "delete": op(
                "Delete a destination created here",
                "deleteDestination",
                "204",
                None,
                path_name=True,
                errors=("404", "409"),
            ),
        },
        "/api/v1/destinations/{name}/check": {
            "post": op(
                "Connection check: assume the role, DryRun each function",
                "checkDestination",
                "200",
                check,
                path_name=True,
                errors=("404", "409"),
            ),
        },
    }
