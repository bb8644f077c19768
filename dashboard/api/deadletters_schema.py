"""OpenAPI paths and component schemas of the deadletters JSON API (merged by api/openapi.py).

Dead-letter queues across clusters, manage and let go; the inbox's paths are merged in
from schema_deadletters_inbox.
"""

from __future__ import annotations

from typing import Any

from dashboard.api import deadletters_inbox_schema as _inbox

_STATUS_TEXT = {
    400: "invalid input (the message says what)",
    401: "not logged in",
    403: "the role is not enough (admin to manage or let go)",
    404: "no such cluster, or not a dead-letter queue mqboard knows of",
    405: "wrong method",
    409: "refused: read-only cluster, or a stream (which cannot be captured)",
    502: "the broker refused or answered badly",
    503: "the broker is unavailable",
    504: "the broker did not answer in time",
}


def _errors(*statuses: int) -> dict[str, Any]:
    # Not openapi.error_responses: that module imports this one.
    return {
        str(s): {
            "description": _STATUS_TEXT[s],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for s in statuses
    }


def _json(schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"200": {"description": text, "content": {"application/json": {"schema": schema}}}}


STR = {"type": "string"}
STR_OR_NULL = {"type": ["string", "null"]}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS: dict[str, Any] = {
    "DeadLetterSource": {
        "type": "object",
        "description": "a queue (or topic) whose dead letters land in this DLQ",
        "properties": {
            "name": STR,
            "via": {
                "type": "string",
                "enum": ["argument", "policy", "name", "managed"],
                "description": "how its dead-letter exchange is set, or how it was guessed",
            },
            "exchange": {**STR_OR_NULL, "description": "the dead-letter exchange"},
            "routing_key": {
                **STR_OR_NULL,
                "description": "dead-letter routing key; null: the message's own",
            },
            "note": STR,
        },
    },
    "ManagedState": {
        "type": "object",
        "description": "set when mqboard captures this DLQ into its database",
        "properties": {
            "managed_by": STR,
            "managed_at": {"type": "string", "format": "date-time"},
            "captured_count": {"type": "integer"},
            "last_captured_at": TIME_OR_NULL,
            "capture_error": {**STR, "description": "why capture is not running, if so"},
            "capture_error_at": TIME_OR_NULL,
        },
    },
    "DeadLetterQueue": {
        "type": "object",
        "required": ["name", "depth", "found_by", "sources", "managed"],
        "properties": {
            "name": STR,
            "vhost": {**STR_OR_NULL, "description": "RabbitMQ only"},
            "depth": {
                "type": ["integer", "null"],
                "description": "messages waiting (Kafka: records kept); null: unknown",
            },
            "found_by": {
                "type": "array",
                "items": {
                    "type": "string",
                    "enum": ["dead-letter exchange", "name", "configured", "managed"],
                },
            },
            "sources": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/DeadLetterSource"},
            },
            "type": {**STR, "description": "classic, quorum, stream, or topic"},
            "exists": {"type": "boolean"},
            "capturable": {"type": "boolean", "description": "false for streams"},
            "managed": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/ManagedState"}]},
        },
    },
    "ClusterDeadLetterQueues": {
        "type": "object",
        "properties": {
            "slug": STR,
            "name": STR,
            "kind": {"type": "string", "enum": ["rabbitmq", "kafka"]},
            "read_only": {"type": "boolean"},
            "error": {**STR_OR_NULL, "description": "the cluster could not be asked"},
            "checked_at": TIME_OR_NULL,
            "scanned": {"type": "integer", "description": "queues or topics read"},
            "complete": {"type": "boolean", "description": "false: stopped at the scan limit"},
            "notes": {"type": "array", "items": STR},
            "dlqs": {"type": "array", "items": {"$ref": "#/components/schemas/DeadLetterQueue"}},
        },
    },
    "DeadLetterQueueTarget": {
        "type": "object",
        "required": ["cluster", "name"],
        "properties": {
            "cluster": {**STR, "description": "cluster slug"},
            "vhost": {**STR, "description": "RabbitMQ vhost; ignored on Kafka"},
            "name": {**STR, "description": "queue or topic name"},
        },
    },
}

_WRITE = {
    "required": True,
    "content": {
        "application/json": {"schema": {"$ref": "#/components/schemas/DeadLetterQueueTarget"}}
    },
}
_MANAGED = {
    "type": "object",
    "properties": {
        "managed": {"type": "boolean"},
        "changed": {"type": "boolean", "description": "false: it already was in that state"},
    },
}

PATHS: dict[str, Any] = {
    "/api/deadletters/queues": {
        "get": {
            "summary": "Every dead-letter queue and topic of every cluster",
            "description": "RabbitMQ: queues fed by a dead-letter exchange (queue argument or "
            "policy, bindings followed) and queues named like dlq; Kafka: topics named like "
            "*.DLT, *-dlt, *-dlq, *.dlq and those in MQB_KAFKA_DLQ_TOPICS. With their sources, "
            "depth and managed state. A cluster that cannot be asked has an error; its managed "
            "DLQs are still listed.",
            "operationId": "deadLetterQueues",
            "responses": {
                **_json(
                    {
                        "type": "object",
                        "properties": {
                            "clusters": {
                                "type": "array",
                                "items": {"$ref": "#/components/schemas/ClusterDeadLetterQueues"},
                            }
                        },
                    },
                    "one entry per cluster",
                ),
                **_errors(401),
            },
        }
    },
    "/api/deadletters/queues/manage": {
        "post": {
            "summary": "Take over a DLQ: the collector captures it into the database (admin)",
            "description": "The collector consumes it (RabbitMQ: manual acks after each database "
            "commit; Kafka: offsets committed after each commit) and stores every dead letter "
            "once. Audited.",
            "operationId": "manageDeadLetterQueue",
            "requestBody": _WRITE,
            "responses": {
                **_json(_MANAGED, "managed"),
                **_errors(400, 401, 403, 404, 405, 409, 502, 503, 504),
            },
        }
    },
    "/api/deadletters/queues/release": {
        "post": {
            "summary": "Let a DLQ go: capture stops, captured rows stay (admin)",
            "operationId": "releaseDeadLetterQueue",
            "requestBody": _WRITE,
            "responses": {
                **_json(_MANAGED, "no longer managed"),
                **_errors(400, 401, 403, 404, 405),
            },
        }
    },
}

# The inbox and its actions.
SCHEMAS.update(_inbox.SCHEMAS)
PATHS.update(_inbox.PATHS)
