"""JSON twin of the overview page: the health of every configured cluster.

``GET /collector`` says which collector leads (host, pid, since when, its lease token)
and how many stand by. ``GET /clusters/health`` answers from the last stored check (the
collector's, or a *check now*), with its age; it opens no broker connection, and reuses
the rows it read for up to ``MQB_HEALTH_REUSE_SECONDS`` (``overview.recent``). ``POST
/clusters/{slug}/check`` (operator, ``api_check``) runs the shared live check.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from ninja import Field, Router
from ninja.renderers import JSONRenderer

from dashboard.core.api import DateTimeText, Out
from dashboard.core.clusters import ClusterHealth, HealthSource
from dashboard.core.leader import get_collector_status
from dashboard.overview.recent import age_of, built_once

router = Router(tags=["clusters"])


class NodeOut(Out):
    name: str
    running: bool
    host: str
    port: int | None
    rack: str | None
    is_controller: bool
    alarms: list[str] = Field(
        default_factory=list, description="resource alarms raised (RabbitMQ: memory, disk)"
    )


class ClusterOverviewOut(Out):
    """Null counts are unknown or not applicable, never zero."""

    kind: str
    product: str
    version: str | None
    cluster_name: str | None
    nodes: list[NodeOut]
    checked_at: DateTimeText
    queues: int | None
    exchanges: int | None
    connections: int | None
    topics: int | None
    partitions: int | None
    consumer_groups: int | None
    consumers: int | None
    messages: int | None
    under_replicated_partitions: int | None = Field(
        None, description="partitions with fewer in-sync replicas than replicas (Kafka)"
    )
    offline_partitions: int | None = Field(None, description="partitions without a leader (Kafka)")
    replication_topics: list[str] = Field(
        default_factory=list,
        description="the first topics holding under-replicated or offline partitions, by name",
    )


class DeadLetterDepthOut(Out):
    name: str
    vhost: str | None
    depth: int | None = Field(description="messages waiting; null when the broker did not say")
    checked_at: DateTimeText | None


class ClusterHealthOut(Out):
    slug: str
    kind: str = Field(description="the broker kind, e.g. rabbitmq or kafka")
    name: str
    address: str = Field(description="never contains credentials")
    ok: bool
    code: str
    message: str
    checked_at: DateTimeText | None = Field(description="when the check ran; null: never")
    elapsed_ms: int = Field(description="how long that check took")
    overview: ClusterOverviewOut | None
    dead_letters: list[DeadLetterDepthOut]
    down_since: DateTimeText | None
    source: HealthSource = Field(
        "live",
        description="live: checked for this answer; collector: the last stored check (by the"
        " collector or a check now); none: never checked (ok=false, code unknown)",
    )
    age_seconds: float | None = Field(
        0.0, description="seconds since checked_at when answered; null when never checked"
    )
    stale: bool = Field(
        False, description="older than a few collector intervals: the state may no longer hold"
    )


class ClustersHealthOut(Out):
    clusters: list[ClusterHealthOut] = Field(description="one per cluster; a down one has ok=false")


@router.get(
    "/clusters/health",
    response=ClustersHealthOut,
    url_name="api-clusters-health",
    summary="Health, version, nodes and counts of every configured cluster",
    operation_id="clustersHealth",
)
async def clusters_health(request: HttpRequest) -> HttpResponse:
    shaped, checks = await built_once(HEALTH_JSON, _health_json)
    now = datetime.now(UTC)
    answer = []
    for data, check in zip(shaped, checks, strict=True):
        age, stale = age_of(check, now)
        answer.append({**data, "age_seconds": age, "stale": stale})
    body = RENDERER.render(request, {"clusters": answer}, response_status=200)
    return HttpResponse(body, content_type=f"{RENDERER.media_type}; charset={RENDERER.charset}")


HEALTH_JSON = "api.clusters_health"
RENDERER = JSONRenderer()
"""the API's renderer (ninja's default), for the answer made here"""


def _health_json(checks: tuple[ClusterHealth, ...]) -> list[dict[str, Any]]:
    """Each check as the response schema makes it (checked, as ninja would, once)."""
    shaped = ClustersHealthOut.model_validate({"clusters": [h.as_json() for h in checks]})
    clusters: list[dict[str, Any]] = shaped.model_dump()["clusters"]
    return clusters


class CollectorOut(Out):
    leading: bool = Field(description="a running collector holds the lease and heartbeats")
    host: str | None = Field(description="who took the lease last; null: no collector ever did")
    pid: int | None
    since: DateTimeText | None = Field(description="when it took the lease")
    token: int = Field(description="the fencing token it took (0: none yet)")
    seen_at: DateTimeText | None = Field(description="its last heartbeat; null: not running")
    standbys: int = Field(description="running collectors standing by to take over")


@router.get(
    "/collector",
    response=CollectorOut,
    url_name="api-collector",
    summary="Which collector leads, since when, and how many stand by",
    operation_id="collectorStatus",
)
async def collector_status(request: HttpRequest) -> dict[str, Any]:
    status = await sync_to_async(get_collector_status)()
    return status.as_json()
