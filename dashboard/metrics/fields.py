"""What the dashboard stores and shows of a sample's values, and how entities are named.

The values themselves, the entity names and :class:`~brokers.base.metrics.Point`
are the brokers' (:mod:`brokers.base.metrics`); an entity's name in
``ThroughputSample.entity`` is the sampler's, at most ``MAX_ENTITY_LENGTH`` long.
"""

from __future__ import annotations

from brokers.base.metrics import FIELDS, Number, Values, queue_entity

INT_FIELDS = frozenset({"depth", "ready", "unacked", "consumers", "lag"})
ENTITY_TYPES = ("cluster", "queue", "topic", "group")
MAX_ENTITY_LENGTH = 512


def entity_of(entity_type: str, name: str, vhost: str | None = None) -> str:
    """The stored entity name of a queue (needs ``vhost``), topic, group or cluster."""
    if entity_type == "queue":
        if vhost is None:
            raise ValueError("a queue needs its vhost")
        return queue_entity(vhost, name)
    return name


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
