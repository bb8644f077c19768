"""OpenAPI paths and component schemas of the rabbitmq JSON API (merged by api/openapi.py)."""

from __future__ import annotations

from typing import Any

BASE = "/api/clusters/{slug}/rabbitmq"


def error_responses(*statuses: int) -> dict[str, Any]:
    # Not imported from api/openapi.py, which imports this module.
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    text = {
        400: "invalid input",
        401: "not logged in",
        403: "the role is not enough (or the CSRF token is missing)",
        404: "no such cluster, vhost, queue or exchange",
        409: "needs confirmation, or not supported (read-only cluster, stream purge)",
        502: "the broker refused (e.g. code unroutable) or answered badly",
        503: "the broker is unavailable",
        504: "the broker did not answer in time",
    }
    return {str(s): {"description": text[s], "content": error} for s in statuses}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _query(name: str, description: str, required: bool = False, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema or {"type": "string"},
    }


SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}
VHOST = _query("vhost", "vhost name, any characters (URL-encoded)", required=True)
NAME = _query(
    "name", "queue or exchange name, any characters; empty for the default exchange", required=True
)
INT = {"type": ["integer", "null"]}
NUM = {"type": ["number", "null"]}
STR = {"type": ["string", "null"]}
TIME = {"type": "string", "format": "date-time"}
ANY_OBJECT = {"type": "object", "additionalProperties": True}
AMQP_OBJECT = {
    "type": "object",
    "additionalProperties": True,
    "description": 'AMQP values JSON lacks are tagged: {"$bytes": base64}, {"$decimal": "1.5"},'
    ' {"$timestamp": ISO 8601}; null is void',
}
WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 502, 503, 504)
READ_ERRORS = error_responses(400, 401, 404, 502, 503, 504)

SCAN = {
    "type": ["object", "null"],
    "description": "present when mqboard read the list itself (type/state/DLX filters)",
    "properties": {
        "scanned": {"type": "integer"},
        "limit": {"type": "integer"},
        "complete": {"type": "boolean", "description": "every queue in scope was read"},
        "requests": {"type": "integer"},
    },
}
QUEUE_ROW_PROPERTIES: dict[str, Any] = {
    "vhost": {"type": "string"},
    "name": {"type": "string"},
    "type": {"type": "string", "enum": ["classic", "quorum", "stream"]},
    "state": STR,
    "messages": INT,
    "ready": INT,
    "unacked": INT,
    "consumers": INT,
    "publish_rate": NUM,
    "deliver_rate": NUM,
    "dead_letter_exchange": STR,
    "dlx_source": {"enum": ["argument", "policy", None]},
    "policy": STR,
    "durable": {"type": ["boolean", "null"]},
    "auto_delete": {"type": ["boolean", "null"]},
    "exclusive": {"type": ["boolean", "null"]},
}
QUEUE_ROW = {
    "type": "object",
    "description": "null is unknown (consumers and rates need stats=1 or a stats sort)",
    "properties": QUEUE_ROW_PROPERTIES,
}
QUEUE_PAGE = {
    "type": "object",
    "properties": {
        "items": {"type": "array", "items": _ref("RabbitQueueRow")},
        "query": ANY_OBJECT,
        "total": INT,
        "filtered": {**INT, "description": "matching queues; null when a scan stopped early"},
        "page_count": INT,
        "has_next": {"type": "boolean"},
        "past_end": {"type": "boolean", "description": "the page asked for is past the end"},
        "fetched_at": TIME,
        "scan": SCAN,
        "requests": {"type": "integer", "description": "management API requests made"},
    },
}
BINDING = {
    "type": "object",
    "properties": {
        "vhost": {"type": "string"},
        "source": {"type": "string"},
        "destination": {"type": "string"},
        "destination_type": {"type": "string", "enum": ["queue", "exchange"]},
        "routing_key": {"type": "string"},
        "arguments": ANY_OBJECT,
    },
}
DL_LINK = {
    "type": "object",
    "properties": {
        "vhost": {"type": "string"},
        "queue": {"type": "string", "description": "empty when the route ends nowhere"},
        "exchange": {"type": "string"},
        "routing_key": STR,
        "via": {"type": "string", "enum": ["argument", "policy"]},
        "note": {"type": "string"},
    },
}
CONSUMER = {
    "type": "object",
    "properties": {
        "queue": {"type": "string"},
        "vhost": {"type": "string"},
        "tag": {"type": "string"},
        "prefetch": INT,
        "ack_required": {"type": ["boolean", "null"]},
        "exclusive": {"type": ["boolean", "null"]},
        "active": {"type": ["boolean", "null"]},
        "connection_name": {"type": "string"},
        "channel_name": {"type": "string"},
        "peer": {"type": "string"},
        "user": {"type": "string"},
        "celery_hostname": {**STR, "description": "from the worker's pidbox consumer"},
    },
}
QUEUE_DETAIL = {
    "type": "object",
    "properties": {
        **{k: QUEUE_ROW_PROPERTIES[k] for k in ("vhost", "name", "type", "state")},
        "node": STR,
        "arguments": ANY_OBJECT,
        "policy": STR,
        "operator_policy": STR,
        "effective_policy": ANY_OBJECT,
        "dead_letter_exchange": STR,
        "dead_letter_routing_key": STR,
        "dlx_source": {"enum": ["argument", "policy", None]},
        **{k: INT for k in ("messages", "ready", "unacked", "message_bytes")},
        **{k: NUM for k in ("publish_rate", "deliver_rate", "ack_rate", "redeliver_rate")},
        "head_message_timestamp": {"type": ["string", "null"], "format": "date-time"},
        "head_message_age": NUM,
        "idle_since": STR,
        "consumers": {"type": "array", "items": _ref("RabbitConsumer")},
        "bindings": {"type": "array", "items": _ref("RabbitBinding")},
        "dead_letters_to": {"type": "array", "items": _ref("RabbitDeadLetterLink")},
        "dead_letters_from": {"type": "array", "items": _ref("RabbitDeadLetterLink")},
        "dead_letter_scan": SCAN,
        "fetched_at": TIME,
    },
}
EXCHANGE_ROW = {
    "type": "object",
    "properties": {
        "vhost": {"type": "string"},
        "name": {"type": "string", "description": "empty for the default exchange"},
        "type": {"type": "string"},
        "durable": {"type": ["boolean", "null"]},
        "auto_delete": {"type": ["boolean", "null"]},
        "internal": {"type": ["boolean", "null"]},
        "arguments": ANY_OBJECT,
        "publish_in_rate": NUM,
        "publish_out_rate": NUM,
    },
}
PEEKED = {
    "type": "object",
    "properties": {
        "position": {"type": "integer"},
        "size": {"type": "integer"},
        "exchange": {"type": "string"},
        "routing_key": {"type": "string"},
        "redelivered": {"type": "boolean"},
        "properties": ANY_OBJECT,
        "headers": AMQP_OBJECT,
        "header_rows": {"type": "array", "items": ANY_OBJECT},
        "x_death": {"type": "array", "items": ANY_OBJECT},
        "decoded": {
            "type": "object",
            "properties": {
                "format": {
                    "enum": [
                        "null",
                        "empty",
                        "json",
                        "msgpack",
                        "celery",
                        "protobuf",
                        "text",
                        "binary",
                    ]
                },
                "text": {"type": "string", "description": "at most the display limit"},
                "truncated": {"type": "boolean"},
                "note": {"type": "string"},
                "celery": {"type": ["object", "null"]},
            },
        },
        "body_base64": {**STR, "description": "the whole body, when within the display limit"},
        "download_url": {**STR, "description": "every byte, for this session, for a while"},
    },
}

SCHEMAS: dict[str, Any] = {
    "RabbitQueueRow": QUEUE_ROW,
    "RabbitQueuePage": QUEUE_PAGE,
    "RabbitQueueDetail": QUEUE_DETAIL,
    "RabbitConsumer": CONSUMER,
    "RabbitBinding": BINDING,
    "RabbitDeadLetterLink": DL_LINK,
    "RabbitExchange": EXCHANGE_ROW,
    "RabbitPeekedMessage": PEEKED,
}

QUEUE_LIST_PARAMS = [
    SLUG,
    _query("vhost", "only this vhost (default: all)"),
    _query(
        "page",
        "1-based; past the end answers past_end=true",
        type="integer",
        minimum=1,
        maximum=1_000_000,
    ),
    _query(
        "page_size", "rows per page (outside 1-500: 400)", type="integer", minimum=1, maximum=500
    ),
    _query(
        "sort",
        "column",
        enum=["name", "depth", "ready", "unacked", "consumers", "publish_rate", "deliver_rate"],
    ),
    _query("reverse", "1 for descending"),
    _query("name", "case-insensitive substring of the name (or a regex with regex=1)"),
    _query("regex", "1: name is a regular expression"),
    _query("type", "classic, quorum or stream; applied by a bounded scan"),
    _query("state", "running, idle, flow, down...; applied by a bounded scan"),
    _query("dlx", "yes or no: has a dead-letter exchange; applied by a bounded scan"),
    _query("stats", "1: also consumers, policy and rates (about twice the cost)"),
]

PATHS: dict[str, Any] = {
    f"{BASE}/queues": {
        "get": {
            "summary": "One page of queues, sorted and filtered (one management request)",
            "operationId": "rabbitmqQueues",
            "parameters": QUEUE_LIST_PARAMS,
            "responses": {"200": _json(_ref("RabbitQueuePage")), **READ_ERRORS},
        }
    },
    f"{BASE}/queue": {
        "get": {
            "summary": "A queue: arguments, policy, dead-letter routes, consumers, bindings",
            "operationId": "rabbitmqQueue",
            "parameters": [SLUG, VHOST, NAME],
            "responses": {"200": _json(_ref("RabbitQueueDetail")), **READ_ERRORS},
        }
    },
    f"{BASE}/queue/peek": {
        "post": {
            "summary": "Read the first messages; requeues them (marks redelivered, may reorder)",
            "description": "Classic and quorum queues cannot be read without taking the"
            " messages: they are requeued, marked redelivered and may be reordered, so peeking"
            " at them needs the operator role (403) and a writable cluster (409). A quorum"
            " queue with a delivery limit (argument, policy, or RabbitMQ 4's default of 20) is"
            " refused with 409 delivery_limit, since a peek could dead-letter or drop a message."
            " The first peek at a queue in a session (every peek on a protected cluster) must"
            " send confirm=true (else 409 confirmation_required). Streams are read by offset"
            " without side effects, by viewers too. Bodies are kept for download within"
            " per-user and total caps; kept_for_download and download_note say.",
            "operationId": "rabbitmqPeek",
            "parameters": [SLUG, VHOST, NAME],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "count": {"type": "integer", "minimum": 1, "default": 10},
                                "confirm": {"type": "boolean"},
                            },
                        }
                    }
                }
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "vhost": {"type": "string"},
                            "queue": {"type": "string"},
                            "queue_type": {"type": "string"},
                            "requested": {"type": "integer"},
                            "remaining": INT,
                            "destructive": {"type": "boolean"},
                            "fetched_at": TIME,
                            "display_limit": {"type": "integer"},
                            "kept_for_download": {"type": "boolean"},
                            "download_note": {
                                "type": "string",
                                "description": "why the bodies were not kept, else empty",
                            },
                            "messages": {"type": "array", "items": _ref("RabbitPeekedMessage")},
                        },
                    }
                ),
                **WRITE_ERRORS,
            },
        }
    },
    f"{BASE}/peeked/{{token}}/{{position}}": {
        "get": {
            "summary": "Every byte of a peeked message body (only for the session that peeked)",
            "operationId": "rabbitmqPeekedBody",
            "parameters": [
                SLUG,
                {"name": "token", "in": "path", "required": True, "schema": {"type": "string"}},
                {
                    "name": "position",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "integer"},
                },
            ],
            "responses": {
                "200": {
                    "description": "the raw body",
                    "content": {"application/octet-stream": {"schema": {"type": "string"}}},
                },
                **error_responses(401, 404),
            },
        }
    },
    f"{BASE}/queue/purge": {
        "post": {
            "summary": "Purge the ready messages (operator; typed name on protected clusters)",
            "operationId": "rabbitmqPurge",
            "parameters": [SLUG, VHOST, NAME],
            "requestBody": {
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "confirm_name": {
                                    **STR,
                                    "description": "the queue name, on protected clusters",
                                }
                            },
                        }
                    }
                }
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "vhost": {"type": "string"},
                            "queue": {"type": "string"},
                            "purged": {"type": "integer"},
                            "ready_before": INT,
                            "unacked_before": INT,
                        },
                    }
                ),
                **WRITE_ERRORS,
            },
        }
    },
    f"{BASE}/exchanges": {
        "get": {
            "summary": "One page of exchanges",
            "operationId": "rabbitmqExchanges",
            "parameters": [
                SLUG,
                _query("vhost", "only this vhost (default: all)"),
                _query("name", "case-insensitive substring"),
                _query("page", "1-based", type="integer", minimum=1, maximum=1_000_000),
                _query(
                    "page_size",
                    "rows per page (outside 1-500: 400)",
                    type="integer",
                    minimum=1,
                    maximum=500,
                ),
            ],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "items": {"type": "array", "items": _ref("RabbitExchange")},
                            "total": INT,
                            "filtered": INT,
                            "page": {"type": "integer"},
                            "page_count": INT,
                            "past_end": {"type": "boolean"},
                            "fetched_at": TIME,
                        },
                    }
                ),
                **READ_ERRORS,
            },
        }
    },
    f"{BASE}/exchange": {
        "get": {
            "summary": "An exchange and its bindings in and out",
            "operationId": "rabbitmqExchange",
            "parameters": [SLUG, VHOST, NAME],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "exchange": _ref("RabbitExchange"),
                            "policy": STR,
                            "bindings_out": {"type": "array", "items": _ref("RabbitBinding")},
                            "bindings_in": {"type": "array", "items": _ref("RabbitBinding")},
                            "bindings_out_total": {"type": "integer"},
                            "bindings_in_total": {"type": "integer"},
                            "is_default": {"type": "boolean"},
                            "fetched_at": TIME,
                        },
                    }
                ),
                **READ_ERRORS,
            },
        }
    },
    f"{BASE}/publish": {
        "post": {
            "summary": "Publish a message (operator), with publisher confirms and mandatory",
            "description": "An unroutable message is an error (code unroutable), never a"
            " silent drop.",
            "operationId": "rabbitmqPublish",
            "parameters": [SLUG],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["vhost"],
                            "properties": {
                                "vhost": {"type": "string"},
                                "exchange": {**STR, "default": ""},
                                "routing_key": {**STR, "default": ""},
                                "body": {**STR, "default": ""},
                                "body_encoding": {
                                    "enum": ["text", "json", "base64", None],
                                    "default": "text",
                                },
                                "headers": {**AMQP_OBJECT, "type": ["object", "null"]},
                                "properties": {
                                    "type": ["object", "null"],
                                    "description": "content_type, content_encoding,"
                                    " delivery_mode (1|2), priority, correlation_id, reply_to,"
                                    " expiration (ms), message_id, timestamp (ISO, epoch s or"
                                    " 'now'), type, user_id, app_id",
                                },
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {
                            "vhost": {"type": "string"},
                            "exchange": {"type": "string"},
                            "routing_key": {"type": "string"},
                            "size": {"type": "integer"},
                            "message_id": STR,
                            "confirmed": {"type": "boolean"},
                        },
                    }
                ),
                **WRITE_ERRORS,
            },
        }
    },
    f"{BASE}/vhosts": {
        "get": {
            "summary": "Vhosts with message totals, rates and queue counts",
            "operationId": "rabbitmqVhosts",
            "parameters": [SLUG],
            "responses": {
                "200": _json(
                    {
                        "type": "object",
                        "properties": {"vhosts": {"type": "array", "items": ANY_OBJECT}},
                    }
                ),
                **READ_ERRORS,
            },
        }
    },
}
