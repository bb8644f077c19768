"""OpenAPI document of the Kafka JSON API: small builders, component schemas, paths.

Merged with the other areas by ``dashboard/api/openapi.py``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PATHS", "SCHEMAS"]

INT = {"type": "integer"}
INT_OR_NULL = {"type": ["integer", "null"]}
STR = {"type": "string"}
STR_OR_NULL = {"type": ["string", "null"]}
TIME = {"type": "string", "format": "date-time"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def obj(required: list[str] | None = None, **props: Any) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": props}
    if required:
        schema["required"] = required
    return schema


def array(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


def param(name: str, where: str = "path", schema: Any = None, text: str = "") -> dict[str, Any]:
    return {
        "name": name,
        "in": where,
        "required": where == "path",
        "schema": schema or STR,
        "description": text,
    }


SCHEMAS: dict[str, Any] = {
    "KafkaCluster": obj(
        cluster_id=STR_OR_NULL,
        controller_id=INT_OR_NULL,
        brokers=array(ref("Node")),
        topics=INT,
        partitions=INT,
        version=STR_OR_NULL,
        checked_at=TIME,
    ),
    "KafkaTopicSummary": obj(
        name=STR,
        partitions=INT,
        replication_factor=INT,
        under_replicated=INT,
        offline=INT,
        internal={"type": "boolean"},
        messages={**INT_OR_NULL, "description": "sum of high - low watermarks; null: unknown"},
        cleanup_policy=STR_OR_NULL,
        compacted={
            "type": ["boolean", "null"],
            "description": "true: messages is an estimate (offsets, not records)",
        },
        error=STR,
    ),
    "KafkaTopicPage": obj(
        topics=array(ref("KafkaTopicSummary")),
        total=INT,
        page=INT,
        per_page=INT,
        pages=INT,
        name_filter=STR,
        include_internal={"type": "boolean"},
        checked_at=TIME,
    ),
    "KafkaPartition": obj(
        partition=INT,
        leader=INT_OR_NULL,
        replicas=array(INT),
        isr=array(INT),
        low=INT_OR_NULL,
        high=INT_OR_NULL,
        messages=INT_OR_NULL,
        under_replicated={"type": "boolean"},
    ),
    "KafkaTopicDetail": obj(
        name=STR,
        internal={"type": "boolean"},
        partitions=array(ref("KafkaPartition")),
        configs=array(
            obj(
                name=STR,
                value=STR_OR_NULL,
                source=STR,
                is_default={"type": "boolean"},
                is_read_only={"type": "boolean"},
                is_sensitive={"type": "boolean"},
            )
        ),
        cleanup_policy=STR_OR_NULL,
        messages=INT_OR_NULL,
        compacted={"type": "boolean"},
        compact_only={"type": "boolean"},
        checked_at=TIME,
    ),
    "KafkaTopicReaders": obj(
        groups=array(obj(group_id=STR, state=STR_OR_NULL, partitions=INT, lag=INT_OR_NULL)),
        checked=INT,
        total=INT,
        complete={"type": "boolean", "description": "false: only the first groups were checked"},
        checked_at=TIME,
    ),
    "KafkaBytes": {
        "oneOf": [
            {"type": "null", "description": "a null key or value"},
            obj(
                format={"type": "string", "description": "json, msgpack, protobuf, text, ..."},
                size=INT,
                text={"type": "string", "description": "decoded for display, cut at the limit"},
                truncated={"type": "boolean"},
                note=STR,
                base64={**STR_OR_NULL, "description": "all bytes; null when over the limit"},
                download={"type": "string", "description": "URL of the full bytes"},
            ),
        ]
    },
    "KafkaRecord": obj(
        partition=INT,
        offset=INT,
        timestamp={**TIME, "type": ["string", "null"]},
        timestamp_type=STR_OR_NULL,
        key=ref("KafkaBytes"),
        value=ref("KafkaBytes"),
        headers=array(obj(key=STR, base64=STR_OR_NULL, display=STR, type=STR)),
    ),
    "KafkaScannedRange": obj(
        partition=INT,
        low=INT_OR_NULL,
        high=INT_OR_NULL,
        start=INT_OR_NULL,
        first=INT_OR_NULL,
        last=INT_OR_NULL,
        next=INT_OR_NULL,
        count=INT,
        at_end={"type": "boolean"},
    ),
    "KafkaRecordPage": obj(
        topic=STR,
        partitions=array(INT),
        search={"type": ["object", "null"]},
        records=array(ref("KafkaRecord")),
        ranges=array(ref("KafkaScannedRange")),
        scanned=INT,
        stopped={
            "type": ["string", "null"],
            "enum": [None, "time", "records", "bytes", "hits"],
            "description": "which bound cut the read short (null: none)",
        },
        bound_hit={"type": "boolean"},
        bounds=obj(max_records=INT, max_seconds={"type": "number"}, max_bytes=INT),
        next_cursor=STR,
        prev_cursor=STR_OR_NULL,
        checked_at=TIME,
    ),
    "KafkaGroupSummary": obj(
        group_id=STR,
        state=STR,
        type=STR,
        protocol=STR,
        members=INT_OR_NULL,
        topics=array(STR),
        committed_partitions=INT,
        has_commits={"type": "boolean"},
        lag={**INT_OR_NULL, "description": "null when the group has no commits"},
        error=STR,
    ),
    "KafkaGroupPage": obj(
        groups=array(ref("KafkaGroupSummary")),
        total=INT,
        page=INT,
        per_page=INT,
        pages=INT,
        name_filter=STR,
        checked_at=TIME,
    ),
    "KafkaGroupDetail": obj(
        group_id=STR,
        state=STR,
        type=STR,
        protocol=STR,
        coordinator=INT_OR_NULL,
        members=array(
            obj(
                member_id=STR,
                client_id=STR,
                host=STR,
                instance_id=STR_OR_NULL,
                assignment=array(array({"type": ["string", "integer"]})),
            )
        ),
        partitions=array(
            obj(
                topic=STR,
                partition=INT,
                committed=INT_OR_NULL,
                end=INT_OR_NULL,
                lag=INT_OR_NULL,
                member_client_id=STR_OR_NULL,
            )
        ),
        lag=INT_OR_NULL,
        is_active={"type": "boolean"},
        checked_at=TIME,
    ),
    "KafkaOffsetResetPlan": obj(
        group_id=STR,
        state=STR,
        changes=array(
            obj(
                topic=STR,
                partition=INT,
                current=INT_OR_NULL,
                new=INT,
                low=INT_OR_NULL,
                high=INT_OR_NULL,
                note=STR,
            )
        ),
        applied={"type": "boolean"},
        checked_at=TIME,
    ),
    "KafkaProduced": obj(
        topic=STR, partition=INT, offset=INT, timestamp={**TIME, "type": ["string", "null"]}
    ),
    "KafkaPurgeResult": obj(
        topic=STR,
        partitions=array(
            obj(
                partition=INT,
                low_before=INT_OR_NULL,
                high_before=INT_OR_NULL,
                low_after=INT_OR_NULL,
                deleted=INT_OR_NULL,
            )
        ),
        deleted=INT_OR_NULL,
        checked_at=TIME,
    ),
}

BASE = "/api/clusters/{cluster}/kafka"

CLUSTER = param("cluster", text="cluster slug")
TOPIC = param("topic", text="topic name")
GROUP = param("group", text="consumer group id (may contain slashes and any Unicode)")
PAGE = param("page", "query", INT, "page number, from 1")


def ok(schema: dict[str, Any], text: str = "OK", status: str = "200") -> dict[str, Any]:
    return {status: {"description": text, "content": {"application/json": {"schema": schema}}}}


def body(schema: dict[str, Any]) -> dict[str, Any]:
    # No body reads as {}: required only where some property is.
    required = bool(schema.get("required"))
    return {"required": required, "content": {"application/json": {"schema": schema}}}


_STATUS_TEXT = {
    400: "invalid input (the message says which parameter)",
    401: "not logged in",
    403: "the role is not enough (operator to produce, admin to purge or reset)",
    404: "no such cluster, topic, partition, record or group",
    409: "refused: read-only cluster, compacted topic, group with active members",
    429: "the user runs MQB_USER_MAX_KAFKA_READS reads already (see Retry-After)",
    502: "the broker refused or answered badly",
    503: "the broker is unavailable",
    504: "the broker did not answer in time",
}


def errors(*statuses: int) -> dict[str, Any]:
    # Not openapi.error_responses: that module imports this one.
    return {
        str(s): {
            "description": _STATUS_TEXT[s],
            "content": {"application/json": {"schema": ref("Error")}},
        }
        for s in statuses
    }


READ_ERRORS = errors(400, 401, 404, 502, 503, 504)
RECORD_READ_ERRORS = errors(400, 401, 404, 429, 502, 503, 504)
WRITE_ERRORS = errors(400, 401, 403, 404, 409, 502, 503, 504)

PRODUCE_BODY = obj(
    partition={**INT_OR_NULL, "description": "null: chosen by the key's hash"},
    key={**STR_OR_NULL, "description": "null: a null key"},
    key_format={"enum": ["text", "base64", None], "description": "null: text"},
    value={**STR_OR_NULL, "description": "null: a tombstone"},
    value_format={"enum": ["text", "json", "base64", None], "description": "null: text"},
    headers={
        **array(
            {
                "oneOf": [
                    obj(["key"], key=STR, value=STR_OR_NULL, format={"enum": ["text", "base64"]}),
                    {"type": "array", "minItems": 2, "maxItems": 2},
                ]
            }
        ),
        "type": ["array", "null"],
        "description": "null: no headers",
    },
)

BROWSE_PARAMS = [
    CLUSTER,
    TOPIC,
    param("partition", "query", INT, "repeat for several; none = all partitions"),
    param(
        "start",
        "query",
        {"enum": ["newest", "oldest", "offset", "timestamp", "cursor"]},
        "where to start; default newest (the newest N records)",
    ),
    param("offset", "query", INT, "with start=offset"),
    param("timestamp", "query", STR, "with start=timestamp: ISO 8601 or epoch ms"),
    param("cursor", "query", STR, "next_cursor/prev_cursor of a previous page (0:120,1:98)"),
    param("limit", "query", INT, "records per page (N)"),
    param("q", "query", STR, "search: a substring of keys and/or values (bounded scan)"),
    param("in", "query", {"enum": ["both", "key", "value"]}, "where to search"),
]

PATHS: dict[str, Any] = {
    BASE: {
        "get": {
            "summary": "Kafka cluster: id, controller, brokers",
            "operationId": "kafkaCluster",
            "parameters": [CLUSTER],
            "responses": {**ok(ref("KafkaCluster")), **READ_ERRORS},
        }
    },
    f"{BASE}/topics": {
        "get": {
            "summary": "A page of topics with partitions, replication, messages",
            "operationId": "kafkaTopics",
            "parameters": [
                CLUSTER,
                PAGE,
                param("q", "query", STR, "name contains (case-insensitive)"),
                param(
                    "internal",
                    "query",
                    STR,
                    "1 or true: include internal topics (any other value: leave them out)",
                ),
            ],
            "responses": {**ok(ref("KafkaTopicPage")), **READ_ERRORS},
        }
    },
    f"{BASE}/topics/{{topic}}": {
        "get": {
            "summary": "A topic's partitions, watermarks and configs",
            "operationId": "kafkaTopic",
            "parameters": [CLUSTER, TOPIC],
            "responses": {**ok(ref("KafkaTopicDetail")), **READ_ERRORS},
        }
    },
    f"{BASE}/topics/{{topic}}/groups": {
        "get": {
            "summary": "Consumer groups with offsets committed on the topic, with lag",
            "operationId": "kafkaTopicGroups",
            "parameters": [CLUSTER, TOPIC],
            "responses": {**ok(ref("KafkaTopicReaders")), **READ_ERRORS},
        }
    },
    f"{BASE}/topics/{{topic}}/messages": {
        "get": {
            "summary": "Browse or search records (never commits, never creates topics)",
            "operationId": "kafkaMessages",
            "parameters": BROWSE_PARAMS,
            "responses": {**ok(ref("KafkaRecordPage")), **RECORD_READ_ERRORS},
        },
        "post": {
            "summary": "Produce one record and wait for its delivery (operator)",
            "operationId": "kafkaProduce",
            "parameters": [CLUSTER, TOPIC],
            "requestBody": body(PRODUCE_BODY),
            "responses": {**ok(ref("KafkaProduced"), "delivered", "201"), **WRITE_ERRORS},
        },
    },
    f"{BASE}/topics/{{topic}}/messages/{{partition}}/{{offset}}": {
        "get": {
            "summary": "One record, re-read by partition and offset",
            "operationId": "kafkaRecord",
            "parameters": [
                CLUSTER,
                TOPIC,
                param("partition", schema=INT),
                param("offset", schema=INT),
            ],
            "responses": {**ok(ref("KafkaRecord")), **RECORD_READ_ERRORS},
        }
    },
    f"{BASE}/topics/{{topic}}/purge": {
        "post": {
            "summary": "Delete records up to the high watermark (admin; refused if compacted)",
            "operationId": "kafkaPurge",
            "parameters": [CLUSTER, TOPIC],
            "requestBody": body(
                obj(
                    partition={**INT_OR_NULL, "description": "null: every partition"},
                    confirm={"type": "string", "description": "topic name (protected clusters)"},
                )
            ),
            "responses": {**ok(ref("KafkaPurgeResult")), **WRITE_ERRORS},
        }
    },
    f"{BASE}/groups": {
        "get": {
            "summary": "A page of consumer groups with state, members, lag and topics",
            "operationId": "kafkaGroups",
            "parameters": [CLUSTER, PAGE, param("q", "query", STR, "group id contains")],
            "responses": {**ok(ref("KafkaGroupPage")), **READ_ERRORS},
        }
    },
    f"{BASE}/groups/{{group}}": {
        "get": {
            "summary": "A consumer group's members and per-partition lag",
            "operationId": "kafkaGroup",
            "parameters": [CLUSTER, GROUP],
            "responses": {**ok(ref("KafkaGroupDetail")), **READ_ERRORS},
        }
    },
    f"{BASE}/reset-offsets/{{group}}": {
        "post": {
            "summary": "Preview (apply=false) or apply a reset of a group's offsets (admin)",
            "description": "Only for groups without active members (409 otherwise).",
            "operationId": "kafkaResetOffsets",
            "parameters": [CLUSTER, GROUP],
            "requestBody": body(
                obj(
                    ["topic", "to"],
                    topic=STR,
                    partition={**INT_OR_NULL, "description": "null: every partition"},
                    to={"enum": ["earliest", "latest", "timestamp", "offset"]},
                    timestamp={"type": "string", "description": "ISO 8601 or epoch ms"},
                    offset=INT,
                    apply={"type": "boolean", "default": False},
                )
            ),
            "responses": {**ok(ref("KafkaOffsetResetPlan")), **WRITE_ERRORS},
        }
    },
}
