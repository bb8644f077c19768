"""Typed schemas of the Kafka JSON API: what each operation takes and answers.

Answers are the services' results as ``serialize`` turns them into JSON: times
as the ISO 8601 text the code makes, ``None`` as unknown (never zero), record
keys, values and header values sent once each: as text when their bytes are
UTF-8, as base64 when they are not, with an ``encoding`` field saying which.

Inputs are parsed by the services, as for the pages: their messages (tested,
and shared with the HTML forms) are the API's. So fields of bodies are declared
with the type the document promises but ``SkipValidation``: the operation hands
them to the service as they were sent (:func:`as_sent`), and the service
refuses what the document does not allow.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import ModelWrapValidatorHandler, SkipValidation, model_validator

from dashboard.core.api import DateTimeText, Out, invalid

# -- answers -------------------------------------------------------------------


class KafkaNodeOut(Out):
    name: str
    running: bool
    host: str
    port: int | None
    rack: str | None
    is_controller: bool
    alarms: list[str] = Field(default_factory=list, description="always empty on Kafka")


class KafkaClusterOut(Out):
    cluster_id: str | None
    controller_id: int | None
    brokers: list[KafkaNodeOut]
    topics: int
    partitions: int
    version: str | None
    checked_at: DateTimeText


class KafkaTopicSummaryOut(Out):
    name: str
    partitions: int
    replication_factor: int
    under_replicated: int = Field(description="partitions whose in-sync replicas are fewer")
    offline: int = Field(description="partitions without a leader")
    internal: bool
    messages: int | None = Field(description="sum of high - low watermarks; null: unknown")
    cleanup_policy: str | None
    error: str = Field(description="why the numbers are unknown; empty when they are not")
    compacted: bool | None = Field(
        description="true: messages is an estimate (offsets, not records); null: unknown"
    )


class KafkaTopicPageOut(Out):
    topics: list[KafkaTopicSummaryOut]
    total: int
    page: int
    per_page: int
    name_filter: str
    include_internal: bool
    checked_at: DateTimeText
    pages: int
    source: Literal["snapshot", "live"] = Field(
        description="snapshot: the collector's latest sample; live: read from Kafka now"
    )
    as_of: DateTimeText = Field(description="when the numbers were read")
    live_reason: str = Field(description="why the list was read live (empty from a snapshot)")


class KafkaPartitionOut(Out):
    partition: int
    leader: int | None
    replicas: list[int]
    isr: list[int]
    low: int | None = Field(description="low watermark; null: unknown")
    high: int | None = Field(description="high watermark; null: unknown")
    messages: int | None
    under_replicated: bool


class KafkaConfigOut(Out):
    name: str
    value: str | None = Field(description="null when sensitive or unknown")
    source: str
    is_default: bool
    is_read_only: bool
    is_sensitive: bool


class KafkaTopicDetailOut(Out):
    name: str
    internal: bool
    partitions: list[KafkaPartitionOut]
    configs: list[KafkaConfigOut]
    cleanup_policy: str | None
    checked_at: DateTimeText
    messages: int | None
    compacted: bool
    compact_only: bool


class KafkaTopicReaderOut(Out):
    group_id: str
    state: str | None
    partitions: int = Field(description="partitions of the topic with a committed offset")
    lag: int | None


class KafkaTopicReadersOut(Out):
    groups: list[KafkaTopicReaderOut]
    checked: int
    total: int
    checked_at: DateTimeText
    complete: bool = Field(description="false: only the first groups were checked")
    known_from: DateTimeText | None = Field(
        None,
        description="set: the groups asked were those the collector's sample of this time"
        " saw reading the topic (it read every group); null: any group of the cluster",
    )


class KafkaBytesOut(Out):
    """A record's key or value: null when the record has none."""

    format: str = Field(description="json, msgpack, protobuf, text, ...")
    size: int = Field(description="bytes")
    encoding: Literal["utf-8", "base64"] = Field(
        description="utf-8: data is the bytes as text; base64: they are not UTF-8"
    )
    data: str = Field(description="the bytes, up to MQB_DISPLAY_LIMIT of them")
    truncated: bool = Field(description="data holds the first bytes only (use download)")
    decoded: str | None = Field(
        description="for base64 data: a rendering for display (MessagePack, Protobuf, hex);"
        " null for text"
    )
    note: str
    download: str = Field(description="URL of the full bytes")


class KafkaHeaderOut(Out):
    key: str
    encoding: Literal["utf-8", "base64"] | None = Field(description="null: a null value")
    value: str | None = Field(description="the bytes, as text or base64 (see encoding)")
    decoded: str | None = Field(description="for base64 values: a rendering for display")
    type: str


class KafkaRecordOut(Out):
    partition: int
    offset: int
    timestamp: DateTimeText | None
    timestamp_type: str | None
    key: KafkaBytesOut | None
    value: KafkaBytesOut | None = Field(description="null: a tombstone")
    headers: list[KafkaHeaderOut]


class KafkaScannedRangeOut(Out):
    partition: int
    low: int | None
    high: int | None
    start: int | None
    first: int | None
    last: int | None
    next: int | None
    count: int
    at_end: bool


class KafkaSearchOut(Out):
    q: str
    in_: Literal["both", "key", "value"] = Field(alias="in")


class KafkaBoundsOut(Out):
    max_records: int = Field(description="records a search scans at most")
    max_seconds: float = Field(description="seconds a search runs at most")
    max_bytes: int = Field(description="bytes a page reads at most")


class KafkaRecordPageOut(Out):
    topic: str
    partitions: list[int] = Field(description="all of the topic's partitions")
    search: KafkaSearchOut | None = Field(description="null: a browse, not a search")
    records: list[KafkaRecordOut]
    ranges: list[KafkaScannedRangeOut] = Field(description="what was read of each partition")
    scanned: int
    stopped: Literal["time", "records", "bytes", "hits"] | None = Field(
        description="which bound cut the read short (null: none)"
    )
    bound_hit: bool
    bounds: KafkaBoundsOut
    next_cursor: str = Field(description="cursor of the following page (0:120,1:98)")
    prev_cursor: str | None = Field(description="cursor of the page before; null: none")
    checked_at: DateTimeText


class KafkaGroupSummaryOut(Out):
    group_id: str
    state: str
    type: str
    protocol: str
    members: int | None
    topics: list[str]
    committed_partitions: int
    lag: int | None = Field(description="null when the group has no commits")
    error: str
    has_commits: bool


class KafkaGroupPageOut(Out):
    groups: list[KafkaGroupSummaryOut]
    total: int
    page: int
    per_page: int
    name_filter: str
    checked_at: DateTimeText
    pages: int
    source: Literal["snapshot", "live"] = Field(
        description="snapshot: the collector's latest sample; live: read from Kafka now"
    )
    as_of: DateTimeText = Field(description="when the numbers were read")
    live_reason: str = Field(description="why the list was read live (empty from a snapshot)")


class KafkaGroupMemberOut(Out):
    member_id: str
    client_id: str
    host: str
    instance_id: str | None
    assignment: list[tuple[str, int]] = Field(description="[topic, partition] pairs")


class KafkaGroupPartitionOut(Out):
    topic: str
    partition: int
    committed: int | None = Field(description="null: no commit")
    end: int | None
    lag: int | None = Field(description="null: unknown (no commit or no end offset)")
    member_client_id: str | None


class KafkaGroupDetailOut(Out):
    group_id: str
    state: str
    type: str
    protocol: str
    coordinator: int | None
    members: list[KafkaGroupMemberOut]
    partitions: list[KafkaGroupPartitionOut]
    checked_at: DateTimeText
    lag: int | None
    is_active: bool


class KafkaOffsetChangeOut(Out):
    topic: str
    partition: int
    current: int | None
    new: int
    low: int | None
    high: int | None
    note: str


class KafkaOffsetResetPlanOut(Out):
    group_id: str
    state: str
    changes: list[KafkaOffsetChangeOut]
    applied: bool
    checked_at: DateTimeText


class KafkaProducedOut(Out):
    topic: str
    partition: int
    offset: int
    timestamp: DateTimeText | None


class KafkaPurgedPartitionOut(Out):
    partition: int
    low_before: int | None
    high_before: int | None
    low_after: int | None
    deleted: int | None


class KafkaPurgeResultOut(Out):
    topic: str
    partitions: list[KafkaPurgedPartitionOut]
    checked_at: DateTimeText
    deleted: int | None


# -- inputs (parsed by the services) ---------------------------------------------------


class TopicBodyIn(Schema):
    """A JSON object; ninja would otherwise read the fields of an array or a string as missing."""

    @model_validator(mode="wrap")
    @classmethod
    def _an_object(cls, data: Any, handler: ModelWrapValidatorHandler[Any]) -> Any:
        if not isinstance(data, dict | Schema):
            raise invalid("the body must be a JSON object")
        return handler(data)


def as_sent(body: Schema) -> dict[str, Any]:
    """The fields of ``body`` that the client sent, with the values it sent."""
    return {name: getattr(body, name) for name in body.model_fields_set}


Format = Literal["text", "json", "base64"]


class KafkaHeaderIn(Schema):
    key: str
    value: str | None = Field(None, description="null: a null value")
    format: Format = Field("text", description="json: validated; base64: the bytes")


class ProduceIn(TopicBodyIn):
    """One record; missing fields are null. No body produces a null record."""

    partition: Annotated[int | None, SkipValidation] = Field(
        None, ge=0, le=2**31 - 1, description="null: chosen by the key's hash"
    )
    key: Annotated[str | None, SkipValidation] = Field(None, description="null: a null key")
    key_format: Annotated[Literal["text", "base64"] | None, SkipValidation] = Field(
        None, description="null: text"
    )
    value: Annotated[str | None, SkipValidation] = Field(None, description="null: a tombstone")
    value_format: Annotated[Format | None, SkipValidation] = Field(
        None, description="null: text; json is validated"
    )
    headers: Annotated[list[KafkaHeaderIn | tuple[str, str | None]] | None, SkipValidation] = Field(
        None, description="in order, names may repeat; [key, value] is text; null: none"
    )


class TopicPurgeIn(TopicBodyIn):
    partition: Annotated[int | None, SkipValidation] = Field(
        None, ge=0, le=2**31 - 1, description="null: every partition"
    )
    confirm: Annotated[str, SkipValidation] = Field(
        "", description="the topic name, on protected clusters"
    )


class ResetOffsetsIn(TopicBodyIn):
    topic: Annotated[str, SkipValidation] = Field(description="the topic whose offsets")
    partition: Annotated[int | None, SkipValidation] = Field(
        None, ge=0, le=2**31 - 1, description="null: every partition of the topic"
    )
    to: Annotated[Literal["earliest", "latest", "timestamp", "offset"], SkipValidation] = Field(
        description="where the new offsets are"
    )
    timestamp: Annotated[str | None, SkipValidation] = Field(
        None, description="with to=timestamp: ISO 8601 or epoch ms"
    )
    offset: Annotated[int | None, SkipValidation] = Field(
        None, ge=0, description="with to=offset (clamped to the partition's watermarks)"
    )
    apply: Annotated[bool, SkipValidation] = Field(
        False, description="false: a preview, nothing written; true: write the new offsets"
    )


# What no body at all means: every field missing.
NO_RECORD = ProduceIn.model_validate({})
NO_PURGE_OPTIONS = TopicPurgeIn.model_validate({})
