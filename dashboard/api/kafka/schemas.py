"""Component schemas of the Kafka JSON API, and small builders for them."""

from __future__ import annotations

from typing import Any

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
