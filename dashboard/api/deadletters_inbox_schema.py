"""OpenAPI paths and schemas of the dead-letter inbox API (merged into deadletters_schema).

Groups, letters, one letter, requeue, discard, discard-all.
"""

from __future__ import annotations

from typing import Any

_TEXT = {
    400: "invalid input (the message says what; e.g. an edited body that is not JSON)",
    401: "not logged in",
    403: "the role is not enough (operator to requeue or discard, admin to discard all or purge)",
    404: "no such dead letter",
    405: "wrong method",
    409: "the dead letter is not pending (already requeued, being requeued or discarded)",
    422: "not sent: unroutable, or unknown topic; the letter is now requeue_failed",
    502: "the broker refused or answered badly",
    503: "the broker is unavailable",
    504: "the broker did not answer in time",
}
_REF_ERROR = {"$ref": "#/components/schemas/Error"}


def _errors(*statuses: int) -> dict[str, Any]:
    return {
        str(s): {"description": _TEXT[s], "content": {"application/json": {"schema": _REF_ERROR}}}
        for s in statuses
    }


def _ok(schema: dict[str, Any], text: str) -> dict[str, Any]:
    return {"200": {"description": text, "content": {"application/json": {"schema": schema}}}}


def _query(name: str, text: str, fmt: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if fmt:
        # Empty is no bound (what an HTML form sends for a blank field).
        schema = {"anyOf": [{"type": "string", "format": fmt}, {"const": ""}]}
        text += "; without an offset, the dashboard's time zone; empty: no bound"
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": text}


FILTER = [
    _query("cluster", "cluster slug"),
    _query("dlq", "the DLQ (queue or topic) name"),
    _query("origin", "substring of origin exchange, routing key, queue or topic"),
    _query("reason", "substring of the reason or exception class"),
    _query("status", "pending, requeuing, requeued, discarded, failed_again, requeue_failed"),
    _query("since", "captured at or after (ISO 8601)", "date-time"),
    _query("until", "captured at or before (ISO 8601)", "date-time"),
    _query("text", "substring of the exception message or message id"),
    _query("group", "a group's fingerprint"),
    {"name": "page", "in": "query", "required": False, "schema": {"type": "integer"}},
]
LETTER_ID = {"name": "letter_id", "in": "path", "required": True, "schema": {"type": "integer"}}
STR = {"type": "string"}
NSTR = {"type": ["string", "null"]}
TIME = {"type": ["string", "null"], "format": "date-time"}
INT = {"type": "integer"}

SCHEMAS: dict[str, Any] = {
    "DeadLetterGroup": {
        "type": "object",
        "description": "dead letters with one fingerprint: same origin, reason and exception",
        "properties": {
            "cluster": STR,
            "fingerprint": STR,
            "origin": STR,
            "dlq": STR,
            "reason": STR,
            "exception_class": STR,
            "exception_message": STR,
            "count": INT,
            "pending": INT,
            "requeued": {**INT, "description": "requeued, including those that came back"},
            "failed_again": {**INT, "description": "requeued ones that dead-lettered again"},
            "first_seen": TIME,
            "last_seen": TIME,
        },
    },
    "DeadLetter": {
        "type": "object",
        "properties": {
            "id": INT,
            "cluster": STR,
            "vhost": NSTR,
            "dlq": STR,
            "message_id": STR,
            "key": {**NSTR, "description": "Kafka key, base64"},
            "origin": {"type": "object"},
            "reason": STR,
            "exception_class": STR,
            "exception_message": STR,
            "fingerprint": STR,
            "attempts": INT,
            "first_failed_at": TIME,
            "last_failed_at": TIME,
            "captured_at": TIME,
            "status": STR,
            "requeue_count": INT,
            "last_error": STR,
            "acted_at": TIME,
            "failed_again_as": {"type": ["integer", "null"]},
            "body_size": INT,
            "body_truncated": {"type": "boolean"},
        },
    },
    "RequeueRequest": {
        "type": "object",
        "description": "all optional: empty sends the letter as captured to its origin",
        "properties": {
            "exchange": {**STR, "description": "RabbitMQ target exchange ('' = default)"},
            "routing_key": STR,
            "topic": {**STR, "description": "Kafka target topic"},
            "body": {**STR, "description": "edited body (validated when the letter is JSON)"},
            "headers": {"description": "edited headers: object (RabbitMQ), [[k, v]] (Kafka)"},
        },
    },
}


def _page(item: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            "page": INT,
            "pages": INT,
            "count": INT,
            "items": {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}},
        },
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


DISCARDED = {"type": "object", "properties": {"discarded": INT}}

PATHS: dict[str, Any] = {
    "/api/deadletters/groups": {
        "get": {
            "summary": "The inbox: dead letters grouped by origin and reason, with counts",
            "operationId": "deadLetterGroups",
            "parameters": FILTER,
            "responses": {**_ok(_page("DeadLetterGroup"), "a page of groups"), **_errors(400, 401)},
        }
    },
    "/api/deadletters/letters": {
        "get": {
            "summary": "Dead letters matching the filter, newest first",
            "operationId": "deadLetters",
            "parameters": FILTER,
            "responses": {**_ok(_page("DeadLetter"), "a page of letters"), **_errors(400, 401)},
        }
    },
    "/api/deadletters/letters/{letter_id}": {
        "get": {
            "summary": "One dead letter: decoded body, headers, x-death, actions taken",
            "operationId": "deadLetter",
            "parameters": [LETTER_ID],
            "responses": {
                **_ok({"$ref": "#/components/schemas/DeadLetter"}, "the letter"),
                **_errors(401, 404),
            },
        }
    },
    "/api/deadletters/letters/{letter_id}/release": {
        "post": {
            "summary": "Put a letter stuck 'being requeued' back to pending (operator)",
            "description": "For a requeue that died between the broker's confirm and recording "
            "it: allowed once the claim is older than MQB_DLQ_STUCK_AFTER seconds and no running "
            "job holds it. The message may already be at its origin. Audited.",
            "operationId": "releaseStuckDeadLetter",
            "parameters": [LETTER_ID],
            "responses": {
                **_ok({"type": "object"}, "pending again"),
                **_errors(400, 401, 403, 404, 405),
            },
        }
    },
    "/api/deadletters/letters/{letter_id}/requeue": {
        "post": {
            "summary": "Requeue one dead letter to its origin or a chosen target (operator)",
            "description": "Publishes with confirms and mandatory routing (RabbitMQ) or an "
            "idempotent producer (Kafka), adds x-mqboard-requeue-count, then marks the letter "
            "requeued. A second request for the same letter answers 409 and sends nothing. "
            "Audited, with the diff of any edit.",
            "operationId": "requeueDeadLetter",
            "parameters": [LETTER_ID],
            "requestBody": _body({"$ref": "#/components/schemas/RequeueRequest"}),
            "responses": {
                **_ok({"type": "object"}, "sent"),
                **_errors(400, 401, 403, 404, 405, 409, 422, 502, 503, 504),
            },
        }
    },
    "/api/deadletters/discard": {
        "post": {
            "summary": "Discard dead letters by id (operator); rows are kept, marked discarded",
            "operationId": "discardDeadLetters",
            "requestBody": _body(
                {"type": "object", "properties": {"ids": {"type": "array", "items": INT}}}
            ),
            "responses": {**_ok(DISCARDED, "how many changed"), **_errors(400, 401, 403, 405)},
        }
    },
    "/api/deadletters/discard-all": {
        "post": {
            "summary": "Discard every pending dead letter matching a filter (admin)",
            "operationId": "discardAllDeadLetters",
            "requestBody": _body({"type": "object", "description": "the inbox filter fields"}),
            "responses": {**_ok(DISCARDED, "how many changed"), **_errors(400, 401, 403, 405)},
        }
    },
    "/api/deadletters/purge": {
        "post": {
            "summary": "Delete dead letters now, a selection or all matching a filter (admin)",
            "description": "Unlike discard, nothing is kept for the retention period. Letters "
            "being requeued are never purged. One audit entry with the ids or the filter.",
            "operationId": "purgeDeadLetters",
            "requestBody": _body(
                {
                    "type": "object",
                    "properties": {
                        "ids": {"type": "array", "items": {"type": "integer"}},
                        "filter": {"type": "object", "description": "the inbox filter fields"},
                    },
                }
            ),
            "responses": {
                "200": {
                    "description": "how many were deleted",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"purged": {"type": "integer"}},
                            }
                        }
                    },
                },
                **_errors(400, 401, 403, 405),
            },
        }
    },
    "/api/deadletters/requeue-bulk": {
        "post": {
            "summary": "Requeue a selection, a group or everything matching a filter, as a job",
            "description": "Operator. The selection (pending letters at this moment) is frozen "
            "in the job; the worker requeues one letter at a time at most rate_limit per "
            "second; pause, resume, cancel and progress are the job API's (/api/jobs/{job_id}).",
            "operationId": "requeueDeadLettersBulk",
            "requestBody": _body(
                {
                    "type": "object",
                    "properties": {
                        "ids": {"type": "array", "items": INT},
                        "filter": {"type": "object", "description": "inbox filter fields"},
                        "rate_limit": {
                            "type": ["number", "null"],
                            "minimum": 0,
                            "maximum": 1_000_000,
                            "description": "messages per second; null or 0 for the default"
                            " (MQB_DLQ_REQUEUE_RATE)",
                        },
                    },
                }
            ),
            "responses": {
                "202": {
                    "description": "the job, queued",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **_errors(400, 401, 403, 405, 503),
            },
        }
    },
}
