"""The OpenAPI 3.1 document of the JSON API, assembled from one module per area.

Each area's schema module sits next to its API module (``rabbitmq/schema.py``,
``kafka/schema.py``, ``deadletters_schema.py``, ...) and owns its ``PATHS``
and ``SCHEMAS``; a test checks that every ``/api/`` route is
documented here, so the schema cannot drift from the URLs.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, JsonResponse

from dashboard.api import deadletters_schema, jobs_schema, metrics_schema
from dashboard.api.kafka import schema as kafka_schema
from dashboard.api.rabbitmq import schema as rabbitmq_schema
from dashboard.core.api import api

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

CLUSTER_HEALTH = {
    "type": "object",
    "required": ["slug", "kind", "ok", "code", "message", "checked_at"],
    "properties": {
        "slug": {"type": "string"},
        "kind": {"type": "string", "enum": ["rabbitmq", "kafka"]},
        "name": {"type": "string"},
        "address": {"type": "string", "description": "never contains credentials"},
        "ok": {"type": "boolean"},
        "code": {"type": "string"},
        "message": {"type": "string"},
        "checked_at": {"type": "string", "format": "date-time"},
        "elapsed_ms": {"type": "integer"},
        "down_since": {"type": ["string", "null"], "format": "date-time"},
        "overview": {
            "oneOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "description": "null counts are unknown or not applicable, never zero",
                    "properties": {
                        "kind": {"type": "string"},
                        "product": {"type": "string"},
                        "version": {"type": ["string", "null"]},
                        "cluster_name": {"type": ["string", "null"]},
                        "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
                        "checked_at": {"type": "string", "format": "date-time"},
                        **{
                            k: {"type": ["integer", "null"]}
                            for k in (
                                "queues",
                                "exchanges",
                                "connections",
                                "topics",
                                "partitions",
                                "consumer_groups",
                                "consumers",
                                "messages",
                            )
                        },
                    },
                },
            ]
        },
        "dead_letters": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "vhost": {"type": ["string", "null"]},
                    "depth": {"type": ["integer", "null"]},
                    "checked_at": {"type": ["string", "null"], "format": "date-time"},
                },
            },
        },
    },
}


def error_responses(*statuses: int) -> dict[str, Any]:
    """Shared error responses for an operation, by status."""
    text = {
        400: "invalid input",
        401: "not logged in",
        403: "the role is not enough",
        404: "no such cluster or entity",
        409: "not supported by this broker or entity",
        502: "the broker refused or answered badly",
        503: "the broker is unavailable",
        504: "the broker did not answer in time",
    }
    return {
        str(s): {
            "description": text.get(s, "error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for s in statuses
    }


BASE_PATHS: dict[str, Any] = {
    "/api/clusters/health": {
        "get": {
            "summary": "Health, version, nodes and counts of every configured cluster",
            "operationId": "clustersHealth",
            "responses": {
                "200": {
                    "description": "one entry per cluster; a down cluster has ok=false",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "clusters": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/ClusterHealth"},
                                    }
                                },
                            }
                        }
                    },
                },
                **error_responses(401),
            },
        }
    },
    "/api/openapi.json": {
        "get": {
            "summary": "This document",
            "operationId": "openapi",
            "responses": {"200": {"description": "OpenAPI 3.1"}},
        }
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


def build_schema() -> dict[str, Any]:
    paths: dict[str, Any] = dict(BASE_PATHS)
    schemas: dict[str, Any] = {"Error": ERROR, "Node": NODE, "ClusterHealth": CLUSTER_HEALTH}
    areas = (rabbitmq_schema, kafka_schema, deadletters_schema, metrics_schema, jobs_schema)
    for module in areas:
        paths.update(module.PATHS)
        schemas.update(module.SCHEMAS)
    paths = _empty_is_default(paths)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mqboard API",
            "version": "1",
            "description": "JSON API of the RabbitMQ and Kafka dashboard. Session login "
            "required; writes need the operator or admin role and a CSRF token.",
        },
        "servers": [{"url": "/"}],
        "components": {
            "schemas": schemas,
            "securitySchemes": {"session": {"type": "apiKey", "in": "cookie", "name": "sessionid"}},
        },
        "security": [{"session": []}],
        "paths": dict(sorted(paths.items())),
    }


@api()
def schema_view(request: HttpRequest) -> JsonResponse:
    return JsonResponse(build_schema())
