"""JSON API of live metrics: a chart's history, and the consumers list.

Both read the database (and the collector's snapshot in Redis), never a broker.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from django.http import HttpRequest
from ninja import Field, Path, Query, Router, Schema
from pydantic import WithJsonSchema

from dashboard.core.api import DateTimeText, Out, QueryInt, error, errors
from dashboard.metrics.consumers import get_consumers_page
from dashboard.metrics.fields import entity_of
from dashboard.metrics.history import UnknownCluster, get_history

router = Router(tags=["metrics"])

EntityType = Literal["cluster", "queue", "topic", "group"]
RangeName = Literal["1h", "24h", "7d"]
DEFAULT_LIMIT = 500
# A query string has no null: QueryInt's "none" is the empty value (a blank form field).
BLANK_OR_INT = WithJsonSchema({"anyOf": [{"type": "integer"}, {"const": ""}]})
MAX_LIMIT = 5000

Counts = list[int | None]
Rates = list[float | None]


class MetricsHistoryOut(Out):
    """Columnar series (uPlot's layout): t holds the times, and each field one value per time.

    null is unknown: a gap (the collector did not sample) or an entity that did
    not exist then.
    """

    cluster: str
    entity_type: EntityType
    entity: str = Field(description="queues: <vhost, URL-encoded>/<name>")
    range: RangeName
    resolution: Literal["raw", "minute", "hour"] = Field(
        description="1h reads raw samples, 24h per-minute, 7d per-hour averages"
    )
    step: float = Field(description="seconds between points")
    generated_at: float = Field(description="Unix time")
    fields: list[str] = Field(description="the names of the series below, in order")
    t: list[float] = Field(description="Unix times")
    depth: Counts = Field(description="messages in the queue (ready + unacked)")
    ready: Counts
    unacked: Counts
    publish_rate: Rates = Field(description="messages per second")
    deliver_rate: Rates = Field(description="messages per second")
    ack_rate: Rates = Field(description="messages per second")
    consumers: Counts
    lag: Counts = Field(description="messages behind (consumer groups)")
    lag_seconds: Rates = Field(description="seconds behind (consumer groups)")


class HistoryQuery(Schema):
    entity_type: EntityType = Field("cluster", alias="type", description="entity type")
    vhost: str | None = Field(None, description="the queue's vhost (queues only)")
    name: str = Field("", description="queue, topic or group name")
    range_name: RangeName = Field("1h", alias="range", description="time range")


@router.get(
    "/metrics/{cluster}/history",
    response={200: MetricsHistoryOut, **errors(400, 404)},
    url_name="api-metrics-history",
    summary="History of a cluster, queue, topic or consumer group for a chart",
    operation_id="metricsHistory",
)
def history(
    request: HttpRequest,
    cluster: Annotated[str, Path(description="cluster slug")],
    query: Query[HistoryQuery],
) -> Any:
    entity_type, name, vhost = query.entity_type, query.name, query.vhost
    if entity_type == "cluster":
        entity = cluster
    elif not name or (entity_type == "queue" and not vhost):
        needed = "vhost and name" if entity_type == "queue" else "name"
        return error(f"a {entity_type} needs its {needed}", "invalid", 400)
    else:
        entity = entity_of(entity_type, name, vhost)
    try:
        found = get_history(cluster, entity_type, entity, query.range_name)
    except UnknownCluster:
        return error(f"no cluster named {cluster!r}", "not_found", 404)
    return found.as_json()


class ConsumerSeenOut(Out):
    cluster: str
    kind: Literal["amqp", "kafka", "celery"]
    identity: str = Field(
        description="AMQP: consumer tag on channel; Kafka: member id; Celery: hostname"
    )
    client: str = Field(description="connection name or client id")
    host: str
    source: str = Field(description="queue name, or consumer group id")
    vhost: str | None
    topics: list[str]
    state: Literal["active", "gone"]
    first_seen: DateTimeText
    last_seen: DateTimeText
    details: dict[str, Any]


class WithoutConsumerOut(Out):
    cluster: str
    entity_type: Literal["queue", "group"]
    vhost: str | None
    name: str
    backlog: int | None = Field(description="queue depth or group lag")
    last_consumer_seen: DateTimeText | None
    idle_since: DateTimeText | None
    monitored_since: DateTimeText | None = Field(
        description="when monitoring of it began, if no consumer was ever seen (idle since then)"
    )
    highlighted: bool = Field(
        description="no consumer for longer than MQB_METRICS_NO_CONSUMER_SECONDS"
    )


class ConsumersOut(Out):
    """Consumers seen by the collector, and queues and groups without any."""

    consumers: list[ConsumerSeenOut]
    total: int = Field(description="consumers matching the filters (more than listed if limited)")
    limit: int
    without_consumers: list[WithoutConsumerOut]
    without_consumers_total: int
    threshold_seconds: int
    sampled_at: dict[str, DateTimeText | None] = Field(
        description="each cluster's last sample, by slug"
    )
    generated_at: DateTimeText
    filters: dict[str, str] = Field(description="the filters applied: kind, cluster, state, q")


class ConsumersQuery(Schema):
    kind: Literal["", "amqp", "kafka", "celery"] = Field(
        "", description="only this kind (empty: every kind)"
    )
    cluster: str = Field("", description="only this cluster")
    state: Literal["active", "gone", "all"] = Field("active", description="active, gone or all")
    q: str = Field("", description="text in identity, source, client or host")
    limit: Annotated[QueryInt, BLANK_OR_INT] = Field(
        None, description=f"most rows (default {DEFAULT_LIMIT}; taken as 1 to {MAX_LIMIT})"
    )


@router.get(
    "/consumers",
    response={200: ConsumersOut, **errors(400)},
    url_name="api-consumers",
    summary="Consumers seen by the collector, and queues and groups without any",
    operation_id="consumersList",
)
def consumers(request: HttpRequest, query: Query[ConsumersQuery]) -> Any:
    # An unknown kind or state is refused: ignoring it would list everything instead.
    limit = query.limit
    rows = max(1, min(MAX_LIMIT, DEFAULT_LIMIT if limit is None else limit))
    page = get_consumers_page(
        kind=query.kind, cluster=query.cluster, state=query.state, search=query.q, limit=rows
    )
    return page.as_json()
