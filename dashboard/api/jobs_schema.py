"""OpenAPI paths and component schemas of jobs and the RabbitMQ move (merged by api/openapi.py)."""

from __future__ import annotations

from typing import Any


def _errors(*statuses: int) -> dict[str, Any]:
    # Not openapi.error_responses: that module imports this one.
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    text = {
        400: "invalid input",
        401: "not logged in",
        403: "the role is not enough (or the CSRF token is missing)",
        404: "no such cluster, vhost, queue, exchange or job",
        409: "the cluster is read-only",
        502: "the broker refused or answered badly",
        503: "the broker (or the dashboard's job queue) is unavailable",
        504: "the broker did not answer in time",
    }
    return {str(s): {"description": text[s], "content": error} for s in statuses}


JOB_REF = {"$ref": "#/components/schemas/Job"}
JOB_ID = {"name": "job_id", "in": "path", "required": True, "schema": {"type": "integer"}}
SLUG = {"name": "slug", "in": "path", "required": True, "schema": {"type": "string"}}


def _job_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": JOB_REF}}}


def _control(action: str, summary: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "operationId": f"{action}Job",
            "parameters": [JOB_ID],
            "responses": {
                "200": _job_response("the job, in its new state"),
                **_errors(401, 403, 404),
                "409": {
                    "description": "the job's state does not allow this (code job_state)",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
                    },
                },
            },
        }
    }


PATHS: dict[str, Any] = {
    "/api/jobs": {
        "get": {
            "summary": "The 50 most recent jobs, newest first",
            "operationId": "listJobs",
            "responses": {
                "200": {
                    "description": "jobs",
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "properties": {"jobs": {"type": "array", "items": JOB_REF}},
                            }
                        }
                    },
                },
                **_errors(401),
            },
        }
    },
    "/api/jobs/{job_id}": {
        "get": {
            "summary": "One job: state, progress, verdict and exact result",
            "operationId": "getJob",
            "parameters": [JOB_ID],
            "responses": {"200": _job_response("the job"), **_errors(401, 404)},
        }
    },
    "/api/jobs/{job_id}/pause": _control(
        "pause", "Pause a queued or running job (noticed within about a second); operator"
    ),
    "/api/jobs/{job_id}/resume": _control("resume", "Resume a paused job; operator"),
    "/api/jobs/{job_id}/cancel": _control(
        "cancel", "Cancel a job; what was done stays done, the rest stays put; operator"
    ),
    "/api/clusters/{slug}/rabbitmq/move": {
        "post": {
            "summary": "Start moving all, or the first N, messages of a queue; operator",
            "description": "Runs as a job in the Celery worker: consume with manual acks, "
            "publish with publisher confirms and mandatory routing, ack only confirmed copies. "
            "Properties and headers are kept; x-mqboard-requeue-count is incremented. "
            "'All' is the source's ready count when the job starts. Follow progress at "
            "/api/jobs/{id} or the websocket ws/jobs/{id}/.",
            "operationId": "startRabbitmqMove",
            "parameters": [SLUG],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/MoveRequest"}}
                },
            },
            "responses": {
                "202": _job_response("the job, queued"),
                **_errors(400, 401, 403, 404, 409, 502, 503, 504),
            },
        }
    },
}

SCHEMAS: dict[str, Any] = {
    "MoveRequest": {
        "type": "object",
        "required": ["vhost", "queue"],
        "properties": {
            "vhost": {"type": "string"},
            "queue": {"type": "string", "description": "the source queue"},
            "target_queue": {"type": ["string", "null"], "description": "move to this queue, or:"},
            "target_exchange": {
                "type": ["string", "null"],
                "description": "publish to this exchange",
            },
            "routing_key": {"type": ["string", "null"], "description": "with this routing key"},
            "count": {
                "type": ["integer", "null"],
                "minimum": 1,
                "description": "the first N messages; null for all (the depth at start)",
            },
            "rate_limit": {
                "type": ["number", "null"],
                "exclusiveMinimum": 0,
                "maximum": 1_000_000,
                "description": "messages per second; null for no limit",
            },
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "kind", "state", "done"],
        "properties": {
            "id": {"type": "integer"},
            "kind": {"type": "string", "examples": ["rabbitmq.move"]},
            "cluster": {"type": ["string", "null"]},
            "state": {
                "type": "string",
                "enum": ["queued", "running", "paused", "cancelled", "done", "failed"],
            },
            "created_by": {"type": ["string", "null"]},
            "created_at": {"type": ["string", "null"], "format": "date-time"},
            "started_at": {"type": ["string", "null"], "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "progress_at": {
                "type": ["string", "null"],
                "format": "date-time",
                "description": "the worker's last report",
            },
            "parameters": {"type": "object"},
            "rate_limit": {"type": ["number", "null"]},
            "total": {"type": ["integer", "null"], "description": "frozen when the job starts"},
            "done": {"type": "integer"},
            "failed": {"type": "integer"},
            "rate": {"type": ["number", "null"], "description": "messages per second"},
            "verdict": {"type": "string"},
            "result": {
                "type": "object",
                "description": "exact outcome; for a move: moved, total, reason, error, "
                "in_doubt, possible_duplicates, published, failed, elapsed, rate",
            },
            "url": {"type": "string", "description": "the job's page"},
        },
    },
}
