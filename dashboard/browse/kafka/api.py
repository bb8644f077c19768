"""Kafka JSON API: cluster, topics, records, consumer groups; produce, purge, reset offsets.

Reads need a login; producing needs the operator role, purging and resetting
offsets the admin role (and a CSRF token, like every write). Reads of records
run on the user's share of the Kafka read threads: past
``MQB_USER_MAX_KAFKA_READS`` running at once the answer is 429 with
``Retry-After``. Writes to a read-only cluster, a purge of a compacted topic and
a reset of a group with active members are refused (409).

Query parameters and bodies are parsed by the same services as the pages, so
their messages are the same (see ``schemas``). Record keys, values and header
values are bytes, sent once: as text when they are UTF-8, as base64 when they
are not (``encoding`` says which), up to ``MQB_DISPLAY_LIMIT`` bytes.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.conf import settings
from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema, Status
from pydantic import SkipValidation

from dashboard.browse.kafka import (
    do_produce,
    do_purge_topic,
    do_reset_offsets,
    get_group_detail,
    get_group_list,
    get_kafka_cluster,
    get_messages,
    get_record,
    get_topic_detail,
    get_topic_list,
    get_topic_readers,
    parse_browse_query,
    parse_offset_reset,
    parse_produce_json,
    preview_offset_reset,
)
from dashboard.browse.kafka.schemas import (
    NO_PURGE_OPTIONS,
    NO_RECORD,
    KafkaClusterOut,
    KafkaGroupDetailOut,
    KafkaGroupPageOut,
    KafkaOffsetResetPlanOut,
    KafkaProducedOut,
    KafkaPurgeResultOut,
    KafkaRecordOut,
    KafkaRecordPageOut,
    KafkaTopicDetailOut,
    KafkaTopicPageOut,
    KafkaTopicReadersOut,
    ProduceIn,
    ResetOffsetsIn,
    TopicPurgeIn,
    as_sent,
)
from dashboard.browse.kafka.serialize import download_base, plain, record_json
from dashboard.browse.kafka.writes import json_partition
from dashboard.core import converters  # noqa: F401  registers <signed:...>
from dashboard.core.api import QueryInt, built_answer, errors
from dashboard.core.limits import user_key
from dashboard.core.params import InvalidInput, parse_page

router = Router(tags=["kafka"])

BASE = "/clusters/{slug:cluster}/kafka"
READ_ERRORS = errors(400, 404, 502, 503, 504)
RECORD_READ_ERRORS = errors(400, 404, 429, 502, 503, 504)
WRITE_ERRORS = errors(400, 403, 404, 409, 502, 503, 504)
# What these answers mean here, added to the generic descriptions of the statuses.
BUSY = {
    "responses": {
        429: {
            "description": "the user runs MQB_USER_MAX_KAFKA_READS reads already (see Retry-After)"
        }
    }
}
REFUSED = {
    "responses": {
        409: {
            "description": "refused: read-only cluster, compacted topic, group with active members"
        }
    }
}

Cluster = Annotated[str, Path(description="cluster slug")]
Topic = Annotated[str, Path(description="topic name")]
Group = Annotated[str, Path(description="consumer group id (may contain slashes and any Unicode)")]
# A number in the query as sent: the services refuse what is not one, with the pages'
# messages. Blank is its default (an HTML form's empty field), as QueryInt.
IntText = Annotated[QueryInt, SkipValidation]
Page = Annotated[IntText, Query(None, description="page number, from 1; empty: 1")]
Live = Annotated[
    str, Query(description="1 or true: read Kafka now instead of the collector's latest sample")
]


@router.get(
    BASE,
    response={200: KafkaClusterOut, **READ_ERRORS},
    url_name="api-kafka-cluster",
    summary="Kafka cluster: id, controller, brokers",
    operation_id="kafkaCluster",
)
async def cluster(request: HttpRequest, cluster: Cluster) -> Any:
    return plain(await get_kafka_cluster(cluster))


@router.get(
    f"{BASE}/topics",
    response={200: KafkaTopicPageOut, **READ_ERRORS},
    url_name="api-kafka-topics",
    summary="A page of topics with partitions, replication, messages",
    operation_id="kafkaTopics",
)
async def topics(
    request: HttpRequest,
    cluster: Cluster,
    page: Page = None,
    q: Annotated[str, Query(description="name contains (case-insensitive)")] = "",
    internal: Annotated[
        str,
        Query(description="1 or true: include internal topics (any other value: leave them out)"),
    ] = "",
    live: Live = "",
) -> Any:
    result, freshness = await get_topic_list(
        cluster,
        page=parse_page(page, error=InvalidInput),
        name_filter=q[:249],
        include_internal=internal in ("1", "true"),
        live_read=live in ("1", "true"),
    )
    return {**plain(result), **freshness.as_api()}


@router.get(
    f"{BASE}/topics/{{topic}}",
    response={200: KafkaTopicDetailOut, **READ_ERRORS},
    url_name="api-kafka-topic",
    summary="A topic's partitions, watermarks and configs",
    operation_id="kafkaTopic",
)
async def topic(request: HttpRequest, cluster: Cluster, topic: Topic) -> Any:
    return plain(await get_topic_detail(cluster, topic))


@router.get(
    f"{BASE}/topics/{{topic}}/groups",
    response={200: KafkaTopicReadersOut, **READ_ERRORS},
    url_name="api-kafka-topic-groups",
    summary="Consumer groups with offsets committed on the topic, with lag",
    operation_id="kafkaTopicGroups",
)
async def topic_groups(request: HttpRequest, cluster: Cluster, topic: Topic) -> Any:
    return plain(await get_topic_readers(cluster, topic))


class BrowseParams(Schema):
    """The browser's query, read from the query string by the page's own parser."""

    partition: Annotated[list[int], SkipValidation] = Field(
        [], description="repeat for several; none = all partitions"
    )
    start: Annotated[
        Literal["newest", "oldest", "offset", "timestamp", "cursor"], SkipValidation
    ] = Field("newest", description="where to start; newest: the newest N records")
    offset: IntText = Field(None, description="with start=offset")
    timestamp: str | None = Field(None, description="with start=timestamp: ISO 8601 or epoch ms")
    cursor: str | None = Field(
        None, description="next_cursor/prev_cursor of a previous page (0:120,1:98)"
    )
    limit: IntText = Field(None, description="records per page (N); MQB_KAFKA_BROWSE_MAX at most")
    q: str | None = Field(
        None, description="search: a substring of keys and/or values (bounded scan)"
    )
    in_: Annotated[Literal["both", "key", "value"], SkipValidation] = Field(
        "both", alias="in", description="where to search"
    )


@router.get(
    f"{BASE}/topics/{{topic}}/messages",
    response={200: KafkaRecordPageOut, **RECORD_READ_ERRORS},
    url_name="api-kafka-messages",
    summary="Browse or search records (never commits, never creates topics)",
    operation_id="kafkaMessages",
    openapi_extra=BUSY,
    by_alias=True,  # search.in
)
async def messages(
    request: HttpRequest, cluster: Cluster, topic: Topic, params: Query[BrowseParams]
) -> Any:
    # ``params`` documents the query; the parser shared with the page reads it.
    query = parse_browse_query(request.GET)
    result = await get_messages(cluster, topic, query, reader=user_key(request.user))
    page = result.page
    downloads = download_base(cluster, topic)
    return built_answer(
        KafkaRecordPageOut,
        {
            "topic": topic,
            "partitions": list(page.partitions),
            "search": {"q": query.search, "in": query.search_in} if query.search else None,
            "records": [record_json(cluster, r, downloads) for r in result.records],
            "ranges": plain(page.ranges),
            "scanned": page.scanned,
            "stopped": page.stopped or None,
            "bound_hit": result.bound_hit,
            "bounds": {
                "max_records": settings.MQB_KAFKA_SEARCH_MAX_RECORDS,
                "max_seconds": settings.MQB_KAFKA_SEARCH_MAX_SECONDS,
                "max_bytes": settings.MQB_KAFKA_BROWSE_MAX_BYTES,
            },
            "next_cursor": _cursor(result.next_cursor),
            "prev_cursor": _cursor(result.prev_cursor) if result.prev_cursor else None,
            "checked_at": page.checked_at.isoformat(),
        },
    )


def _cursor(pairs: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{p}:{o}" for p, o in pairs)


@router.post(
    f"{BASE}/topics/{{topic}}/messages",
    response={201: KafkaProducedOut, **WRITE_ERRORS},
    url_name="api-kafka-messages",
    summary="Produce one record and wait for its delivery (operator)",
    operation_id="kafkaProduce",
    openapi_extra=REFUSED,
)
async def produce(
    request: HttpRequest, cluster: Cluster, topic: Topic, payload: ProduceIn = NO_RECORD
) -> Any:
    record = parse_produce_json(as_sent(payload))
    user = await request.auser()
    produced = await do_produce(cluster, topic, record, user=user, request=request)
    return Status(201, plain(produced))


@router.get(
    f"{BASE}/topics/{{topic}}/messages/{{signed:partition}}/{{signed:offset}}",
    response={200: KafkaRecordOut, **RECORD_READ_ERRORS},
    url_name="api-kafka-record",
    summary="One record, re-read by partition and offset",
    operation_id="kafkaRecord",
    openapi_extra=BUSY,
)
async def record(
    request: HttpRequest, cluster: Cluster, topic: Topic, partition: int, offset: int
) -> Any:
    view = await get_record(cluster, topic, partition, offset, reader=user_key(request.user))
    return record_json(cluster, view)


@router.post(
    f"{BASE}/topics/{{topic}}/purge",
    response={200: KafkaPurgeResultOut, **WRITE_ERRORS},
    url_name="api-kafka-purge",
    summary="Delete records up to the high watermark (admin; refused if compacted)",
    operation_id="kafkaPurge",
    openapi_extra=REFUSED,
)
async def purge(
    request: HttpRequest, cluster: Cluster, topic: Topic, payload: TopicPurgeIn = NO_PURGE_OPTIONS
) -> Any:
    data = as_sent(payload)
    result = await do_purge_topic(
        cluster,
        topic,
        partition=json_partition(data.get("partition")),
        confirm=str(data.get("confirm") or ""),
        user=await request.auser(),
        request=request,
    )
    return plain(result)


@router.get(
    f"{BASE}/groups",
    response={200: KafkaGroupPageOut, **READ_ERRORS},
    url_name="api-kafka-groups",
    summary="A page of consumer groups with state, members, lag and topics",
    operation_id="kafkaGroups",
)
async def groups(
    request: HttpRequest,
    cluster: Cluster,
    page: Page = None,
    q: Annotated[str, Query(description="group id contains")] = "",
    live: Live = "",
) -> Any:
    result, freshness = await get_group_list(
        cluster,
        page=parse_page(page, error=InvalidInput),
        name_filter=q[:255],
        live_read=live in ("1", "true"),
    )
    return {**plain(result), **freshness.as_api()}


@router.get(
    f"{BASE}/groups/{{path:group}}",
    response={200: KafkaGroupDetailOut, **READ_ERRORS},
    url_name="api-kafka-group",
    summary="A consumer group's members and per-partition lag",
    operation_id="kafkaGroup",
)
async def group(request: HttpRequest, cluster: Cluster, group: Group) -> Any:
    return plain(await get_group_detail(cluster, group))


@router.post(
    f"{BASE}/reset-offsets/{{path:group}}",
    response={200: KafkaOffsetResetPlanOut, **WRITE_ERRORS},
    url_name="api-kafka-reset",
    summary="Preview (apply=false) or apply a reset of a group's offsets (admin)",
    description="Only for groups without active members (409 otherwise).",
    operation_id="kafkaResetOffsets",
    openapi_extra=REFUSED,
)
async def reset_offsets(
    request: HttpRequest, cluster: Cluster, group: Group, payload: ResetOffsetsIn
) -> Any:
    data = as_sent(payload)
    reset = parse_offset_reset({k: "" if v is None else str(v) for k, v in data.items()})
    user = await request.auser()
    if data.get("apply") is True:
        plan = await do_reset_offsets(cluster, group, reset, user=user, request=request)
    else:
        plan = await preview_offset_reset(cluster, group, reset, user=user, request=request)
    return plain(plan)
