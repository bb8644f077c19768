"""One sample of one cluster, as the collector stores and pushes it."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from brokers.base import DLQ_NAME_PATTERN
from dashboard.metrics.fields import Point, Values

_DLQ_NAME = re.compile(DLQ_NAME_PATTERN)


def looks_like_dlq(name: str) -> bool:
    # The cheap test first: this runs for every queue of every sample.
    return name[-3:].lower() in ("dlq", "dlt") and _DLQ_NAME.search(name) is not None


class SeenConsumer(NamedTuple):
    """A consumer seen in a sample: an AMQP consumer, a Kafka member or a Celery worker."""

    kind: str
    identity: str
    source: str
    client: str
    host: str
    details: dict[str, Any]


@dataclass(frozen=True)
class ClusterSample:
    """Everything one sample of one cluster found. ``consumers`` is None when not read."""

    slug: str
    kind: str
    time: datetime
    totals: Values
    points: tuple[Point, ...]
    consumers: tuple[SeenConsumer, ...] | None
    seconds: float
    cost: dict[str, Any] = field(default_factory=dict)
