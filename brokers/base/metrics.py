"""The metrics capability: a kind makes the sampler of one cluster, and what a sample holds.

A :class:`Metrics` capability makes a :class:`Sampler` for one cluster from
:class:`SamplerOptions` (the tunables of every kind; each kind reads those that
apply to it and ignores the rest). The collector calls the sampler: a full
sample of every entity, a sample of the few entities someone is watching, and
``close`` when it stops. A sample is a :class:`ClusterSample` of
:class:`Point` s, one per entity, and the consumers seen (:class:`SeenConsumer`).

An entity is a cluster, a RabbitMQ queue, a Kafka topic or a consumer group.
Its name is the slug for a cluster, the topic or group id as is, and
``<vhost, percent-encoded>/<queue name>`` for a queue of a kind that has vhosts
(a vhost may contain ``/``; the encoded one cannot): :func:`queue_entity`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from urllib.parse import quote, unquote

from brokers.base.results import DLQ_NAME_PATTERN

if TYPE_CHECKING:
    from brokers.base.config import ClusterConfig
    from brokers.base.contract import Broker

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

Number = int | float | None
Values = tuple[Number, ...]
"""One value per name in FIELDS, in that order; None is unknown, never zero."""

NO_VALUES: Values = (None,) * len(FIELDS)


def values_of(
    *,
    depth: int | None = None,
    ready: int | None = None,
    unacked: int | None = None,
    publish_rate: float | None = None,
    deliver_rate: float | None = None,
    ack_rate: float | None = None,
    consumers: int | None = None,
    lag: int | None = None,
    lag_seconds: float | None = None,
) -> Values:
    """The values of one entity, by field name; a field not given is unknown."""
    return (
        depth,
        ready,
        unacked,
        publish_rate,
        deliver_rate,
        ack_rate,
        consumers,
        lag,
        lag_seconds,
    )


def value(values: Values, name: str) -> Number:
    """One field of ``values`` by its name in FIELDS."""
    return values[FIELDS.index(name)]


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


def rounded(value: float | None, places: int = 3) -> float | None:
    if value is None or math.isnan(value):
        return None
    return round(value, places)


_DLQ_NAME = re.compile(DLQ_NAME_PATTERN)


def looks_like_dlq(name: str) -> bool:
    # The cheap test first: this runs for every queue of every sample.
    return name[-3:].lower() in ("dlq", "dlt") and _DLQ_NAME.search(name) is not None


class SeenConsumer(NamedTuple):
    """A consumer seen in a sample: an AMQP consumer, a Kafka member or a Celery worker.

    ``kind`` is the kind of consumer (``amqp``, ``kafka``, ``celery``), not of broker.
    """

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


@dataclass(frozen=True)
class SamplerOptions:
    """Every sampler tunable; a kind reads the ones that apply to it and ignores the rest.

    * ``vhosts``: sample only these vhosts (RabbitMQ; empty is every vhost, and
      the totals are then the cluster's own, not a sum);
    * ``page_concurrency``: queue-list pages in flight at once (RabbitMQ);
    * ``topics``: a regular expression; sample only the topics it finds, and the
      groups reading them (Kafka; empty is every topic);
    * ``max_groups``: consumer groups read per sample, by group id (Kafka);
    * ``group_clients``: admin clients (connections) that share the calls of
      reading thousands of consumer groups (Kafka);
    * ``offsets_log``: committed offsets from following ``__consumer_offsets``
      rather than asking every group each sample (Kafka);
    * ``lag_probes`` and ``lag_probe_seconds``: record timestamps read per
      sample for lag in seconds, and the time allowed for it (Kafka);
    * ``rate_window``: seconds of history a rate computed from growing counters
      spans (Kafka's offsets).
    """

    vhosts: tuple[str, ...] = ()
    page_concurrency: int = 2
    topics: str = ""
    max_groups: int = 20000
    group_clients: int = 4
    offsets_log: bool = True
    lag_probes: int = 500
    lag_probe_seconds: float = 2.0
    rate_window: float = 5.0


class Sampler(Protocol):
    """Samples one cluster for the collector, through the cluster's connected adapter.

    ``managed_dlqs`` is the set of entities the dashboard captures dead letters
    from: their points say they are DLQs even when their names do not.
    ``watchable`` names the entity types :meth:`watched` can sample.
    """

    managed_dlqs: set[str]
    watchable: frozenset[str]

    async def full(self, broker: Broker, /) -> ClusterSample:
        """Every entity, the totals and the consumers: one sample."""
        ...

    async def watched(self, broker: Broker, entities: Iterable[tuple[str, str]], /) -> list[Point]:
        """Fresh points of the (entity type, entity) pairs someone is watching."""
        ...

    def close(self) -> None:
        """Release what the sampler holds of its own (not the adapter); safe to call twice."""
        ...


class Metrics(Protocol):
    """Makes the sampler that reads one cluster's depths, rates, lag and consumers.

    ``entity_types`` are the types of entity a sample of this kind reports
    besides the cluster (``queue``, ``topic``, ``group``).
    """

    @property
    def entity_types(self) -> tuple[str, ...]: ...

    def sampler(self, config: ClusterConfig, options: SamplerOptions) -> Sampler: ...
