"""The live metrics messages: what the collector pushes and the metrics websocket sends.

The collector pushes :class:`MetricsPoint` (a new sample of one entity, to the
entity's group), :class:`MetricsCluster` (a cluster's totals after a full
sample, to ``cluster.<slug>``) and :class:`MetricsStatus` (unavailable since
..., or back; to the cluster's group and every watched entity's). The
websocket (``MetricsConsumer``) parses each into its type and sends it on as
is, after its own :class:`MetricsHello`. Times are Unix seconds; numbers keep
the type they were sampled with (an int stays an int); None is unknown.
"""

from __future__ import annotations

from typing import Any, Literal

from ninja import Field

from dashboard.core.api import Out
from dashboard.core.events import Event

Number = int | float
EntityType = Literal["cluster", "queue", "topic", "group"]


class ClusterStatus(Out):
    """A cluster's sampling status, as stored in the collector's Redis snapshot."""

    cluster: str
    kind: str = Field(description="the broker kind, e.g. rabbitmq or kafka")
    ok: bool | None = Field(description="null before the first sample")
    checked_at: float = Field(description="when the last sample was tried")
    sampled_at: float | None = Field(description="when the last sample succeeded")
    down_since: float | None = Field(description="first failed sample of this outage")
    message: str = Field(description="why it is unavailable; empty when ok")
    interval: Number = Field(description="seconds between full samples")
    seconds: float | None = Field(default=None, description="how long the sample took (ok only)")
    cost: dict[str, Any] | None = Field(default=None, description="calls, pages, ... (ok only)")


class MetricsStatus(ClusterStatus, Event):
    """Unavailable since ..., or back: to the cluster's page and every watched entity's."""

    OPTIONAL = ("seconds", "cost")

    type: Literal["metrics.status"] = "metrics.status"


class MetricsCluster(ClusterStatus, Event):
    """A cluster's totals after a full sample, with its status, to ``cluster.<slug>``."""

    OPTIONAL = ("seconds", "cost")

    type: Literal["metrics.cluster"] = "metrics.cluster"
    values: dict[str, Number | None] = Field(description="one value per field name")


class MetricsPoint(Event):
    """A new sample of one entity, to the entity's group (only while someone watches it)."""

    OPTIONAL = ("extra",)

    type: Literal["metrics.point"] = "metrics.point"
    cluster: str
    entity_type: EntityType
    entity: str = Field(description="queues: <vhost, URL-encoded>/<name>")
    time: float
    step: Number = Field(description="seconds until the next point")
    values: dict[str, Number | None] = Field(description="one value per field name")
    time_to_drain: float | None = Field(
        description="seconds until the backlog is gone at these rates; null if not shrinking"
    )
    extra: dict[str, Any] | None = Field(
        default=None, description="what has no column (lag source...)"
    )


class MetricsHello(Event):
    """The websocket's first message: what it watches and the cluster's last status."""

    type: Literal["metrics.hello"] = "metrics.hello"
    cluster: str
    kind: str
    entity_type: EntityType
    entity: str
    fields: list[str]
    interval: Number
    watch_interval: Number
    status: dict[str, Any] = Field(
        description="the cluster's last ClusterStatus; empty before its first sample"
    )
