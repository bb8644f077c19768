"""OpenAPI paths and component schemas of the live metrics JSON API (merged by api/openapi.py)."""

from __future__ import annotations

from typing import Any

NUM_OR_NULL = {"type": ["number", "null"]}
TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
FIELD_NAMES = [
    "depth",
    "ready",
    "unacked",
    "publish_rate",
    "deliver_rate",
    "ack_rate",
    "consumers",
    "lag",
    "lag_seconds",
]


def _errors(*statuses: int) -> dict[str, Any]:
    text = {400: "invalid parameters", 401: "not logged in", 404: "no such cluster"}
    return {
        str(s): {
            "description": text[s],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for s in statuses
    }


def _param(name: str, where: str, text: str, schema: Any = None, required: bool = False) -> Any:
    return {
        "name": name,
        "in": where,
        "required": required or where == "path",
        "schema": schema or {"type": "string"},
        "description": text,
    }


SCHEMAS: dict[str, Any] = {
    "MetricsHistory": {
        "type": "object",
        "description": "Columnar series (uPlot's layout): t holds the times, and each field "
        "one value per time. null is unknown: a gap (the collector did not sample) or an "
        "entity that did not exist then.",
        "required": ["cluster", "entity_type", "range", "resolution", "step", "t", "fields"],
        "properties": {
            "cluster": {"type": "string"},
            "entity_type": {"type": "string", "enum": ["cluster", "queue", "topic", "group"]},
            "entity": {"type": "string", "description": "queues: <vhost, URL-encoded>/<name>"},
            "range": {"type": "string", "enum": ["1h", "24h", "7d"]},
            "resolution": {
                "type": "string",
                "enum": ["raw", "minute", "hour"],
                "description": "1h reads raw samples, 24h per-minute, 7d per-hour averages",
            },
            "step": {"type": "number", "description": "seconds between points"},
            "generated_at": {"type": "number", "description": "Unix time"},
            "fields": {"type": "array", "items": {"type": "string"}},
            "t": {"type": "array", "items": {"type": "number"}, "description": "Unix times"},
            **{name: {"type": "array", "items": NUM_OR_NULL} for name in FIELD_NAMES},
        },
    },
    "ConsumerSeen": {
        "type": "object",
        "properties": {
            "cluster": {"type": "string"},
            "kind": {"type": "string", "enum": ["amqp", "kafka", "celery"]},
            "identity": {
                "type": "string",
                "description": "AMQP: consumer tag on channel; Kafka: member id; Celery: hostname",
            },
            "source": {"type": "string", "description": "queue name, or consumer group id"},
            "vhost": {"type": ["string", "null"]},
            "topics": {"type": "array", "items": {"type": "string"}},
            "client": {"type": "string", "description": "connection name or client id"},
            "host": {"type": "string"},
            "state": {"type": "string", "enum": ["active", "gone"]},
            "first_seen": TIME,
            "last_seen": TIME,
            "details": {"type": "object"},
        },
    },
    "WithoutConsumer": {
        "type": "object",
        "properties": {
            "cluster": {"type": "string"},
            "entity_type": {"type": "string", "enum": ["queue", "group"]},
            "vhost": {"type": ["string", "null"]},
            "name": {"type": "string"},
            "backlog": {"type": ["integer", "null"], "description": "queue depth or group lag"},
            "last_consumer_seen": TIME_OR_NULL,
            "idle_since": TIME_OR_NULL,
            "highlighted": {
                "type": "boolean",
                "description": "no consumer for longer than MQB_METRICS_NO_CONSUMER_SECONDS",
            },
        },
    },
}

PATHS: dict[str, Any] = {
    "/api/metrics/{cluster}/history": {
        "get": {
            "summary": "History of a cluster, queue, topic or consumer group for a chart",
            "operationId": "metricsHistory",
            "parameters": [
                _param("cluster", "path", "cluster slug"),
                _param(
                    "type",
                    "query",
                    "entity type (default cluster)",
                    {"type": "string", "enum": ["cluster", "queue", "topic", "group"]},
                ),
                _param("vhost", "query", "the queue's vhost (queues only)"),
                _param("name", "query", "queue, topic or group name"),
                _param(
                    "range",
                    "query",
                    "time range (default 1h)",
                    {"type": "string", "enum": ["1h", "24h", "7d"]},
                ),
            ],
            "responses": {
                "200": {
                    "description": "the series",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": "#/components/schemas/MetricsHistory"}
                        }
                    },
                },
                **_errors(400, 401, 404),
            },
        }
    },
    "/api/consumers": {
        "get": {
            "summary": "Consumers seen by the collector, and queues and groups without any",
            "operationId": "consumersList",
            "parameters": [
                _param(
                    "kind",
                    "query",
                    "only this kind (empty: every kind)",
                    {"type": "string", "enum": ["", "amqp", "kafka", "celery"]},
                ),
                _param("cluster", "query", "only this cluster"),
                _param(
                    "state",
                    "query",
                    "active (default), gone or all",
                    {"type": "string", "enum": ["active", "gone", "all"]},
                ),
                _param("q", "query", "text in identity, source, client or host"),
                _param("limit", "query", "most rows (default 500)", {"type": "integer"}),
            ],
            "responses": {
                "200": {
                    "description": "consumers and entities without consumers",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {
                                    "consumers": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/ConsumerSeen"},
                                    },
                                    "total": {"type": "integer"},
                                    "limit": {"type": "integer"},
                                    "without_consumers": {
                                        "type": "array",
                                        "items": {"$ref": "#/components/schemas/WithoutConsumer"},
                                    },
                                    "without_consumers_total": {"type": "integer"},
                                    "threshold_seconds": {"type": "integer"},
                                    "sampled_at": {
                                        "type": "object",
                                        "additionalProperties": TIME_OR_NULL,
                                    },
                                    "generated_at": TIME,
                                    "filters": {"type": "object"},
                                },
                            }
                        }
                    },
                },
                **_errors(400, 401),
            },
        }
    },
}
