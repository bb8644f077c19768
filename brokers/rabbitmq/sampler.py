"""Sampling a RabbitMQ cluster: every queue, the totals, the consumers, watched queues.

The metrics capability of RabbitMQ (:class:`RabbitMQMetrics`): it makes a
:class:`RabbitMQSampler`, which turns what :mod:`brokers.rabbitmq.metrics` reads
from the management API into the neutral points of :mod:`brokers.base.metrics`.
Of :class:`~brokers.base.metrics.SamplerOptions` it reads ``vhosts`` and
``page_concurrency``. A queue's entity is :func:`~brokers.base.metrics.queue_entity`
of its vhost and name; a queue has no lag.

Every queue is read from the management API's queue list, page by page, unless
the cluster names its nodes' Prometheus endpoints (``prometheus_urls``): then
from those (:mod:`brokers.rabbitmq.prometheus`), whose cost does not grow with
the square of the number of queues.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from brokers.base import Broker, ClusterConfig
from brokers.base.metrics import (
    ClusterSample,
    Point,
    SamplerOptions,
    SeenConsumer,
    Values,
    looks_like_dlq,
    queue_entity,
    rounded,
    split_queue_entity,
    values_of,
)
from brokers.rabbitmq import prometheus
from brokers.rabbitmq.adapter import RabbitMQBroker, quote_vhost
from brokers.rabbitmq.metrics import (
    AmqpConsumer,
    ClusterTotals,
    QueueStats,
    QueueSweep,
    cluster_totals,
    consumers,
    queue_stats,
    sweep_queues,
)

WATCH_CONCURRENCY = 8


def _values(q: QueueStats) -> Values:
    return values_of(
        depth=q.messages,
        ready=q.ready,
        unacked=q.unacked,
        publish_rate=q.publish_rate,
        deliver_rate=q.deliver_rate,
        ack_rate=q.ack_rate,
        consumers=q.consumers,
    )


def _totals(t: ClusterTotals) -> Values:
    return values_of(
        depth=t.messages,
        ready=t.ready,
        unacked=t.unacked,
        publish_rate=t.publish_rate,
        deliver_rate=t.deliver_rate,
        ack_rate=t.ack_rate,
        consumers=t.consumers,
    )


def _sum_queues(queues: list[QueueStats]) -> Values:
    def total(field: str) -> Any:
        known = [v for q in queues if (v := getattr(q, field)) is not None]
        return sum(known) if known else None

    return values_of(
        depth=total("messages"),
        ready=total("ready"),
        unacked=total("unacked"),
        publish_rate=rounded(total("publish_rate")),
        deliver_rate=rounded(total("deliver_rate")),
        ack_rate=rounded(total("ack_rate")),
        consumers=total("consumers"),
    )


def _management(broker: Broker) -> RabbitMQBroker:
    if not isinstance(broker, RabbitMQBroker):
        raise TypeError(f"a RabbitMQ sampler needs a RabbitMQ adapter, not {broker!r}")
    return broker


def seen_consumers(found: Iterable[AmqpConsumer]) -> tuple[SeenConsumer, ...]:
    """AMQP consumers, plus one Celery worker row per (worker, task queue)."""
    rows: list[SeenConsumer] = []
    for c in found:
        if not c.channel:
            # The management API lists a new consumer before its channel's
            # details; its identity needs them, so it is recorded next sample.
            continue
        source = queue_entity(c.vhost, c.queue)
        details = {
            "vhost": c.vhost,
            "queue": c.queue,
            "tag": c.tag,
            "channel": c.channel,
            "user": c.user,
            "prefetch": c.prefetch,
            "ack_required": c.ack_required,
            "active": c.active,
            "celery_hostname": c.celery_hostname,
        }
        identity = f"{c.tag} on {c.channel}" if c.channel else c.tag
        rows.append(SeenConsumer("amqp", identity, source, c.connection, c.peer_host, details))
        if c.celery_hostname and not c.is_pidbox:
            rows.append(
                SeenConsumer(
                    "celery",
                    c.celery_hostname,
                    source,
                    c.connection,
                    c.peer_host,
                    {"vhost": c.vhost, "queue": c.queue, "prefetch": c.prefetch},
                )
            )
    return tuple(rows)


class RabbitMQMetrics:
    """RabbitMQ's metrics capability: queues, besides the cluster."""

    entity_types = ("queue",)

    def sampler(self, config: ClusterConfig, options: SamplerOptions) -> RabbitMQSampler:
        return RabbitMQSampler(config, concurrency=options.page_concurrency, vhosts=options.vhosts)


class RabbitMQSampler:
    watchable = frozenset({"queue", "cluster"})

    def __init__(
        self, config: ClusterConfig, *, concurrency: int = 2, vhosts: Iterable[str] = ()
    ) -> None:
        self.config = config
        self.concurrency = concurrency
        self.vhosts = tuple(vhosts)
        self.managed_dlqs: set[str] = set()
        self._dlq_depths: dict[str, tuple[float, int]] = {}
        self._rates = prometheus.CounterRates()
        self._attributes: dict[tuple[str, str], dict[str, Any]] = {}
        self._attributes_at: float | None = None
        self._attributes_task: asyncio.Task[None] | None = None

    def close(self) -> None:
        """Every request goes through the adapter; only a definitions read may be running."""
        if self._attributes_task is not None:
            self._attributes_task.cancel()
            self._attributes_task = None

    async def full(self, broker: Broker, *, vhost: str | None = None) -> ClusterSample:
        """Every queue, the totals and the consumers: one atomic sample.

        Only ``vhost`` (or the sampler's ``vhosts``) when given; the totals are then
        the sum of those vhosts' queues instead of the whole cluster's.
        """
        api = _management(broker)
        started = time.monotonic()
        vhosts: tuple[str | None, ...] = (vhost,) if vhost is not None else self.vhosts or (None,)
        if self.config.prometheus_urls:
            texts, found_lists = await asyncio.gather(
                self._scrape(api, vhosts), asyncio.gather(*(consumers(api, v) for v in vhosts))
            )
            sweeps = [self._prometheus_sweep(texts, found_lists, started)]
        else:
            sweeps, found_lists = await asyncio.gather(
                asyncio.gather(
                    *(sweep_queues(api, vhost=v, concurrency=self.concurrency) for v in vhosts)
                ),
                asyncio.gather(*(consumers(api, v) for v in vhosts)),
            )
        queues = [q for sweep in sweeps for q in sweep.queues]
        found = tuple(c for found_list in found_lists for c in found_list)
        totals = _totals(await cluster_totals(api)) if vhosts == (None,) else _sum_queues(queues)
        now = time.monotonic()
        points = []
        dlq_depths: dict[str, tuple[float, int]] = {}
        prefixes: dict[str, str] = {}  # a vhost's quoted part of the entity, once
        for q in queues:
            prefix = prefixes.get(q.vhost)
            if prefix is None:
                prefix = prefixes[q.vhost] = queue_entity(q.vhost, "")
            entity = prefix + q.name
            extra = dict(q.attributes) if q.attributes else None
            if looks_like_dlq(q.name) or entity in self.managed_dlqs:
                extra = extra or {}
                extra.update(dlq=True, arrival_rate=self._arrivals(entity, now, q))
                if q.messages is not None:
                    dlq_depths[entity] = (now, q.messages)
            points.append(Point("queue", entity, _values(q), extra))
        self._dlq_depths = dlq_depths
        pages = sum(s.pages for s in sweeps)
        requests = pages + (1 if self.config.prometheus_urls else 2) * len(vhosts)
        return ClusterSample(
            slug=self.config.slug,
            kind=self.config.kind,
            time=datetime.now(UTC),
            totals=totals,
            points=tuple(points),
            consumers=seen_consumers(found),
            seconds=time.monotonic() - started,
            cost={"pages": pages, "requests": requests, "queues": len(points)},
        )

    async def _scrape(self, api: RabbitMQBroker, vhosts: tuple[str | None, ...]) -> list[str]:
        """Every node's Prometheus text for ``vhosts``; the definitions read when due."""
        params = [("family", f) for f in prometheus.FAMILIES]
        params += [("vhost", v) for v in vhosts if v is not None]
        await self._refresh_attributes(api, vhosts)
        return await asyncio.gather(
            *(
                api.prometheus_get(url.rstrip("/") + "/metrics/detailed", params)
                for url in self.config.prometheus_urls
            )
        )

    def _prometheus_sweep(
        self, texts: list[str], found_lists: Iterable[Iterable[AmqpConsumer]], started: float
    ) -> QueueSweep:
        """Every queue the nodes reported (``pages``: the requests made), its consumers
        counted from the consumer list, its properties from the definitions read last."""
        scrape = prometheus.Scrape()
        for text in texts:
            prometheus.parse(text, scrape)
        counts: dict[tuple[str, str], int] = {}
        for found in found_lists:
            for c in found:
                counts[(c.vhost, c.queue)] = counts.get((c.vhost, c.queue), 0) + 1
        rates = self._rates.rates(scrape.counters)
        queues = prometheus.queue_stats(scrape, rates, self._attributes, counts)
        return QueueSweep(
            queues=tuple(queues),
            pages=len(texts),
            seconds=time.monotonic() - started,
            total=len(queues),
        )

    async def _refresh_attributes(
        self, api: RabbitMQBroker, vhosts: tuple[str | None, ...]
    ) -> None:
        """Read the definitions the first time (waiting for them), then every
        ``prometheus.ATTRIBUTES_SECONDS`` in the background (a sample does not wait)."""
        task = self._attributes_task
        if task is not None and task.done():
            self._attributes_task = None
            if not task.cancelled() and task.exception() is not None:
                self._attributes_at = None  # failed: try again at the next sample
        if self._attributes_task is not None:
            return
        if self._attributes_at is None:
            await self._read_attributes(api, vhosts)
        elif time.monotonic() - self._attributes_at >= prometheus.ATTRIBUTES_SECONDS:
            self._attributes_task = asyncio.ensure_future(self._read_attributes(api, vhosts))

    async def _read_attributes(self, api: RabbitMQBroker, vhosts: tuple[str | None, ...]) -> None:
        found: dict[tuple[str, str], dict[str, Any]] = {}
        for v in vhosts:
            path = "/api/definitions" if v is None else f"/api/definitions/{quote_vhost(v)}"
            definitions = await api.management_get(path)
            if isinstance(definitions, dict):
                found.update(prometheus.attributes_of(definitions, v))
        self._attributes, self._attributes_at = found, time.monotonic()

    def _arrivals(self, entity: str, now: float, q: QueueStats) -> float | None:
        """Messages arriving per second, estimated: depth growth plus acks.

        RabbitMQ does not count dead-lettered messages as publishes to the
        dead-letter queue, so its publish rate is blind to them.
        """
        before = self._dlq_depths.get(entity)
        if before is None or q.messages is None or now <= before[0]:
            return None
        growth = (q.messages - before[1]) / (now - before[0])
        return rounded(max(0.0, growth + (q.ack_rate or 0.0)))

    async def watched(self, broker: Broker, entities: Iterable[tuple[str, str]]) -> list[Point]:
        """Fresh values of the queues (and the cluster totals) someone is watching."""
        api = _management(broker)
        limit = asyncio.Semaphore(WATCH_CONCURRENCY)

        async def one(entity_type: str, entity: str) -> Point | None:
            async with limit:
                if entity_type == "cluster":
                    return Point("cluster", entity, _totals(await cluster_totals(api)))
                vhost, name = split_queue_entity(entity)
                stats = await queue_stats(api, vhost, name)
            return None if stats is None else Point("queue", entity, _values(stats))

        wanted = [(t, e) for t, e in entities if t in self.watchable]
        found = await asyncio.gather(*(one(t, e) for t, e in wanted))
        return [p for p in found if p is not None]
