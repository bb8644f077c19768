"""Hand-written OpenAPI paths of the areas not yet declared as django-ninja routers.

Each area's schema module sits next to its API module and owns its ``PATHS``
and ``SCHEMAS``; ``dashboard/openapi.py`` merges them into the generated
document. An area leaves this list when its router lands.
"""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "required": ["error", "code"],
    "properties": {
        "error": {"type": "string", "description": "what went wrong, for users"},
        "code": {
            "type": "string",
            "examples": ["unavailable", "auth_failed", "timeout", "not_found", "not_supported"],
        },
    },
}

NODE = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "running": {"type": "boolean"},
        "host": {"type": "string"},
        "port": {"type": ["integer", "null"]},
        "rack": {"type": ["string", "null"]},
        "is_controller": {"type": "boolean"},
    },
}


def _empty_is_default(paths: dict[str, Any]) -> dict[str, Any]:
    """Integer query parameters also take an empty value, meaning their default.

    Every number in a query string is read that way (a blank field of an HTML
    form sends ``page=``), so the document says so once, here, for all of them.
    """
    result: dict[str, Any] = {}
    for path, item in paths.items():
        result[path] = {
            method: {**op, "parameters": [_with_empty(p) for p in op["parameters"]]}
            if isinstance(op, dict) and "parameters" in op
            else op
            for method, op in item.items()
        }
    return result


def _with_empty(param: dict[str, Any]) -> dict[str, Any]:
    schema = param.get("schema", {})
    kind = schema.get("type")
    if param.get("in") != "query" or "integer" not in (kind if isinstance(kind, list) else [kind]):
        return param
    text = param.get("description", "")
    return {
        **param,
        "schema": {"anyOf": [schema, {"const": ""}]},
        "description": f"{text}; empty: the default" if text else "empty: the default",
    }


def legacy_document(areas: tuple[Any, ...]) -> dict[str, Any]:
    """The paths and component schemas of the areas still written as dicts."""
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {"Error": ERROR, "Node": NODE}
    for module in areas:
        paths.update(module.PATHS)
        schemas.update(module.SCHEMAS)
    return {"paths": _empty_is_default(paths), "schemas": schemas}
