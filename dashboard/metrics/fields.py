"""What one sample of one entity holds, and how entities are named.

An entity is a cluster, a RabbitMQ queue, a Kafka topic or a consumer group.
Its name in ``ThroughputSample.entity`` is the slug for a cluster, the topic
or group id as is, and ``<vhost, percent-encoded>/<queue name>`` for a queue
(a vhost may contain ``/``; the encoded one cannot).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple
from urllib.parse import quote, unquote

FIELDS = (
    "depth",
    "ready",
    "unacked",
    "publish_rate",
    "deliver_rate",
    "ack_rate",
    "consumers",
    "lag",
    "lag_seconds",
)
INT_FIELDS = frozenset({"depth", "ready", "unacked", "consumers", "lag"})
ENTITY_TYPES = ("cluster", "queue", "topic", "group")
MAX_ENTITY_LENGTH = 512

Number = int | float | None
Values = tuple[Number, ...]
"""One value per name in FIELDS, in that order; None is unknown, never zero."""

NO_VALUES: Values = (None,) * len(FIELDS)


class Point(NamedTuple):
    """One entity at one sample. ``extra`` holds what has no column (lag source...)."""

    entity_type: str
    entity: str
    values: Values
    extra: dict[str, Any] | None = None


def queue_entity(vhost: str, name: str) -> str:
    return f"{quote(vhost, safe='')}/{name}"


def split_queue_entity(entity: str) -> tuple[str, str]:
    vhost, _, name = entity.partition("/")
    return unquote(vhost), name


def entity_of(entity_type: str, name: str, vhost: str | None = None) -> str:
    """The stored entity name of a queue (needs ``vhost``), topic, group or cluster."""
    if entity_type == "queue":
        if vhost is None:
            raise ValueError("a queue needs its vhost")
        return queue_entity(vhost, name)
    return name


def rounded(value: float | None, places: int = 3) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, places)


def as_dict(values: Values) -> dict[str, Number]:
    return dict(zip(FIELDS, values, strict=True))


def time_to_drain(entity_type: str, values: Values) -> float | None:
    """Seconds until the backlog is gone at the current rates; None when it is not shrinking.

    The backlog is the depth of a queue or the lag of a group; it shrinks by
    (deliver - publish) per second.
    """
    data = as_dict(values)
    backlog = data["lag"] if entity_type == "group" else data["depth"]
    if entity_type not in ("queue", "group") or backlog is None:
        return None
    if backlog <= 0:
        return 0.0
    inflow, outflow = data["publish_rate"], data["deliver_rate"]
    if inflow is None or outflow is None or outflow <= inflow:
        return None
    return round(backlog / (outflow - inflow), 1)
