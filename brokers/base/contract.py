"""The contract every broker adapter fulfils.

An adapter wraps one cluster. It is created from a :class:`ClusterConfig`,
opened with :meth:`Broker.connect`, and closed with :meth:`Broker.close`; it can
also be used as an ``async with`` block. Everything that crosses this boundary
is a frozen dataclass, and every failure is a :class:`BrokerError` subclass, so
callers never see a library's own exception types.

What a kind can do beyond that is a capability of its :class:`BrokerKind`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar, Protocol, Self, runtime_checkable

from brokers.base.browse import QueueBrowser, TopicBrowser
from brokers.base.config import ClusterConfig
from brokers.base.deadletters import DeadLetters
from brokers.base.metrics import Metrics
from brokers.base.move import Mover
from brokers.base.results import DeadLetterQueue, Overview
from brokers.base.tail import Tap


@runtime_checkable
class Broker(Protocol):
    kind: ClassVar[str]
    config: ClusterConfig

    async def connect(self) -> None:
        """Open the connections the adapter needs; raise a BrokerError if it cannot."""

    async def close(self) -> None:
        """Release every connection; safe to call twice or after a failed connect."""

    async def ping(self) -> None:
        """Return when the cluster answers a real request; raise a BrokerError otherwise."""

    async def overview(self) -> Overview:
        """Version, nodes and counts of the whole cluster."""

    async def dead_letter_queues(
        self, limit: int = 50, *, vhost: str | None = None
    ) -> tuple[DeadLetterQueue, ...]:
        """Queues or topics named like dead-letter queues, with their depth.

        ``vhost`` narrows a RabbitMQ search to one vhost; other kinds ignore it.
        """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BrokerBase:
    """Shared ``async with`` plumbing for adapters."""

    async def connect(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


class Environment(Protocol):
    """Settings by name, as a kind's ``local_cluster`` reads them (``MQB_<KIND>_*``)."""

    def text(self, name: str, default: str = "") -> str: ...

    def secret(self, name: str, default: str = "") -> str: ...


@dataclass(frozen=True)
class BrokerKind:
    """One broker kind: its adapter, what tells it apart as data, and its capabilities.

    Each broker package defines one in its ``kind`` module, and
    :mod:`brokers.registry` maps a kind's name to it. Code outside the registry
    never compares kind names: it asks the kind for a capability and gets
    ``None`` when the kind has none (see :func:`brokers.registry.require`).

    * ``has_vhosts``: a queue is addressed by vhost and name (RabbitMQ), not by
      name alone (Kafka topics);
    * ``overview_counts``: the counts of :class:`~brokers.base.results.Overview`
      that apply to this kind, as (field name, label), in the order shown;
    * ``metrics``: makes the sampler of one cluster (:mod:`brokers.base.metrics`);
    * ``deadletters``: discovery, capture and the requeue sender
      (:mod:`brokers.base.deadletters`);
    * ``queues``: the queue browser over an adapter of this kind (vhosts,
      queues, exchanges, peek, publish, purge; :mod:`brokers.base.browse`);
    * ``topics``: the topic browser over an adapter of this kind (topics,
      consumer groups, offsets, records, produce, purge; :mod:`brokers.base.browse`);
    * ``tap``: live tails (:mod:`brokers.base.tail`);
    * ``mover``: moves messages between queues (:mod:`brokers.base.move`);
    * ``local_cluster``: the cluster of this kind a fresh install watches on
      127.0.0.1, read from ``MQB_<KIND>_*`` settings and a timeout.

    ``queues`` and ``topics`` take the adapter that :attr:`adapter` made for a
    cluster (the dashboard keeps one per cluster and process) and return it, or
    a browser over it, typed as the capability.
    """

    name: str
    label: str
    adapter: type[Broker]
    has_vhosts: bool
    overview_counts: tuple[tuple[str, str], ...] = ()
    metrics: Metrics | None = None
    deadletters: DeadLetters | None = None
    queues: Callable[[Broker], QueueBrowser] | None = None
    topics: Callable[[Broker], TopicBrowser] | None = None
    tap: Tap | None = None
    mover: Mover | None = None
    local_cluster: Callable[[Environment, float], ClusterConfig] | None = None
