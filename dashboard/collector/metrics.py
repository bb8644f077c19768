"""Metrics: sample every cluster, store the history, track consumers, push deltas.

Each cluster runs its own two loops, so a slow or dead cluster never delays
another: the full sample every ``interval`` (every queue, topic and group; the
consumers), and a watch loop every ``MQB_METRICS_WATCH_INTERVAL`` seconds that
re-samples only the entities someone has open in a browser. Every sample has
a deadline on top of the per-call timeouts. After a full sample the collector
writes the raw rows and consumer rows (one transaction, fenced: see
``core.leader``), the Redis snapshot,
and pushes the cluster's totals to ``cluster.<slug>``; watched entities get
their point pushed to their own group (``queue.<cluster>.<vhost>.<name>``...).
A failed sample pushes "unavailable since ..." to the same groups and stores
nothing, so charts show a gap rather than invented numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, cast

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import DatabaseError, close_old_connections, transaction
from redis.exceptions import RedisError

from brokers.base import BrokerError, ClusterConfig
from brokers.base.metrics import (
    ClusterSample,
    Point,
    Sampler,
    SamplerOptions,
    queue_entity,
    split_queue_entity,
)
from brokers.registry import kind_of, require
from dashboard.alerts.hook import after_sample
from dashboard.collector.consumers_tracking import ConsumerTracker
from dashboard.core.channel_groups import (
    cluster_group,
    consumer_group_group,
    queue_group,
    topic_group,
)
from dashboard.core.clusters import get_cluster_configs, sync_cluster_rows
from dashboard.core.connections import drop_broker, get_broker
from dashboard.core.leader import LeaseLost, check_fence
from dashboard.core.stopping import until_stopped
from dashboard.metrics.events import EntityType, MetricsCluster, MetricsPoint, MetricsStatus
from dashboard.metrics.fields import as_dict, time_to_drain
from dashboard.metrics.snapshot import write_sample, write_status
from dashboard.metrics.store import SampleWriter
from dashboard.metrics.watchers import get_watched
from dashboard.models import ManagedDeadLetterQueue

log = logging.getLogger("dashboard.collector.metrics")
MANAGED_REFRESH = 60.0
RESTART_PAUSE = 5.0


def entity_group(cluster: str, entity_type: str, entity: str) -> str:
    """The channel group a point of this entity goes to."""
    if entity_type == "queue":
        vhost, name = split_queue_entity(entity)
        return queue_group(cluster, vhost, name)
    if entity_type == "topic":
        return topic_group(cluster, entity)
    if entity_type == "group":
        return consumer_group_group(cluster, entity)
    return cluster_group(cluster)


def point_message(cluster: str, point: Point, at: float, step: float) -> dict[str, Any]:
    return MetricsPoint(
        cluster=cluster,
        entity_type=cast(EntityType, point.entity_type),
        entity=point.entity,
        time=at,
        step=step,
        values=as_dict(point.values),
        time_to_drain=time_to_drain(point.entity_type, point.values),
        extra=point.extra or None,
    ).as_json()


def sampler_options(interval: float) -> SamplerOptions:
    """Every sampler tunable from settings; each kind reads the ones that apply to it."""
    return SamplerOptions(
        vhosts=tuple(settings.MQB_METRICS_RABBITMQ_VHOSTS),
        page_concurrency=settings.MQB_METRICS_RABBITMQ_CONCURRENCY,
        topics=settings.MQB_METRICS_KAFKA_TOPICS,
        max_groups=settings.MQB_METRICS_KAFKA_MAX_GROUPS,
        group_clients=settings.MQB_METRICS_KAFKA_GROUP_CLIENTS,
        offsets_log=settings.MQB_METRICS_KAFKA_OFFSETS_LOG,
        lag_probes=settings.MQB_METRICS_LAG_PROBES,
        lag_probe_seconds=settings.MQB_METRICS_LAG_PROBE_SECONDS,
        rate_window=max(5.0, interval),
    )


def make_sampler(config: ClusterConfig, interval: float) -> Sampler:
    metrics = require(config, lambda k: k.metrics, "metrics")
    return metrics.sampler(config, sampler_options(interval))


class ClusterLoop:
    """Both loops of one cluster and what they remember between samples."""

    def __init__(self, config: ClusterConfig, cluster_id: int, interval: float) -> None:
        self.config = config
        self.slug = config.slug
        self.interval = interval
        self.watch_interval = settings.MQB_METRICS_WATCH_INTERVAL
        self.sampler = make_sampler(config, interval)
        self.writer = SampleWriter(cluster_id, config.slug)
        self.tracker = ConsumerTracker(cluster_id)
        self.cluster_id = cluster_id
        self.ok: bool | None = None
        self.down_since: float | None = None
        self.last_sampled: float | None = None
        self.message = ""
        # Every broker call has its own timeout (the cluster's); this only stops a
        # sample that hangs anyway. It is generous because walking 10,000 queues
        # takes tens of requests, and slower is not unavailable.
        self.deadline = max(60.0, 4 * interval, 10 * (config.timeout + 1))
        self._managed_at = 0.0
        self._layer = get_channel_layer()
        self._push_failures = 0

    @property
    def fast_watch(self) -> bool:
        """Watched entities get their own loop only when it is faster than the full one."""
        return self.watch_interval < self.interval

    async def run(self, stop: asyncio.Event) -> None:
        try:
            await asyncio.gather(
                self._every(stop, self.interval, self.full_once), self._watch(stop)
            )
        finally:
            self.sampler.close()

    async def _every(self, stop: asyncio.Event, seconds: float, step: Any) -> None:
        """Run ``step`` every ``seconds``; a step still running at shutdown is cancelled."""
        loop = asyncio.get_running_loop()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                started = loop.time()
                task = asyncio.ensure_future(step())
                await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                    return
                task.result()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(max(0.05, seconds - (loop.time() - started))):
                        await asyncio.shield(stopping)
        finally:
            stopping.cancel()

    async def _watch(self, stop: asyncio.Event) -> None:
        if self.fast_watch:
            await self._every(stop, self.watch_interval, self.watch_once)

    # -- full samples ---------------------------------------------------------

    async def full_once(self) -> None:
        sample: ClusterSample | None = None
        try:
            async with asyncio.timeout(self.deadline):
                broker = await get_broker(self.slug)
                await self._refresh_managed()
                sample = await self.sampler.full(broker)
        except BrokerError as exc:
            await self._failed(exc.message)
        except TimeoutError:
            await self._failed(f"no complete sample within {self.deadline:g} s")
        else:
            await self._succeeded(sample)
        await after_sample(self.cluster_id, self.slug, sample)

    async def _refresh_managed(self) -> None:
        if time.monotonic() - self._managed_at < MANAGED_REFRESH:
            return
        self._managed_at = time.monotonic()
        self.sampler.managed_dlqs = await sync_to_async(self._managed_dlqs)()

    def _managed_dlqs(self) -> set[str]:
        rows = ManagedDeadLetterQueue.objects.filter(cluster_id=self.cluster_id, active=True)
        if kind_of(self.config).has_vhosts:
            return {queue_entity(v, n) for v, n in rows.values_list("vhost", "name")}
        return set(rows.values_list("name", flat=True))

    def _store(self, sample: ClusterSample) -> int:
        with transaction.atomic():
            written = self.writer.write(sample)
            if sample.consumers is not None:
                self.tracker.record(sample.consumers, sample.time)
            check_fence()
        return written

    async def _succeeded(self, sample: ClusterSample) -> None:
        at = sample.time.timestamp()
        try:
            written = await sync_to_async(self._store)(sample)
        except (DatabaseError, LeaseLost) as exc:
            log.warning("%s: samples not stored: %s", self.slug, exc)
            self.writer.forget()
            self.tracker = ConsumerTracker(self.cluster_id)
            await sync_to_async(close_old_connections)()
            written = 0
        recovered = self.ok is not True
        self.ok, self.down_since, self.message, self.last_sampled = True, None, "", at
        log.debug("%s: sampled in %.2f s, %d rows", self.slug, sample.seconds, written)
        status = self._status(at, seconds=sample.seconds, cost=sample.cost)
        await self._redis(write_sample(sample, self.interval))
        await self._redis(write_status(self.slug, status))
        await self._push(
            cluster_group(self.slug),
            MetricsCluster(**status, values=as_dict(sample.totals)).as_json(),
        )
        if recovered:
            await self._push_status(status)
        if not self.fast_watch:
            watched = await self._watched()
            wanted = {key for key in watched if key[0] != "cluster"}
            for point in sample.points:
                if (point.entity_type, point.entity) in wanted:
                    await self._push(
                        entity_group(self.slug, point.entity_type, point.entity),
                        point_message(self.slug, point, at, self.interval),
                    )

    async def _failed(self, message: str) -> None:
        now = time.time()
        if self.ok is not False:
            log.warning("%s: metrics unavailable: %s", self.slug, message)
            self.down_since = now
        self.ok, self.message = False, message
        await drop_broker(self.slug)
        status = self._status(now)
        await self._redis(write_status(self.slug, status))
        await self._push_status(status)

    def _status(self, checked: float, **more: Any) -> dict[str, Any]:
        return {
            "cluster": self.slug,
            "kind": self.config.kind,
            "ok": self.ok,
            "checked_at": checked,
            "sampled_at": self.last_sampled,
            "down_since": self.down_since,
            "message": self.message,
            "interval": self.interval,
            **more,
        }

    async def _push_status(self, status: dict[str, Any]) -> None:
        """Tell the cluster's page and every watched entity's page."""
        message = MetricsStatus(**status).as_json()
        await self._push(cluster_group(self.slug), message)
        for entity_type, entity in await self._watched():
            if entity_type != "cluster":
                await self._push(entity_group(self.slug, entity_type, entity), message)

    # -- watched entities -------------------------------------------------------

    async def watch_once(self) -> None:
        if self.ok is False:
            return  # the full loop finds out when it is back
        watched = {key for key in await self._watched() if key[0] in self.sampler.watchable}
        if not watched:
            return
        try:
            async with asyncio.timeout(self.config.timeout + 2):
                broker = await get_broker(self.slug)
                points = await self.sampler.watched(broker, watched)
        except (BrokerError, TimeoutError) as exc:
            log.debug("%s: watched entities not sampled: %s", self.slug, exc)
            return
        at = time.time()
        for point in points:
            await self._push(
                entity_group(self.slug, point.entity_type, point.entity),
                point_message(self.slug, point, at, self.watch_interval),
            )

    async def _watched(self) -> set[tuple[str, str]]:
        try:
            return await get_watched(self.slug)
        except (OSError, RedisError) as exc:
            log.debug("%s: cannot read watchers: %s", self.slug, exc)
            return set()

    # -- plumbing ------------------------------------------------------------------

    async def _redis(self, write: Any) -> None:
        try:
            await write
        except (OSError, RedisError) as exc:
            log.warning("%s: snapshot not written to Redis: %s", self.slug, exc)

    async def _push(self, group: str, message: dict[str, Any]) -> None:
        try:
            await self._layer.group_send(group, message)
            self._push_failures = 0
        except (OSError, RedisError) as exc:
            # Redis down: samples are stored; browsers catch up on the next push.
            self._push_failures += 1
            if self._push_failures == 1:
                log.warning("%s: cannot push to the channel layer: %s", self.slug, exc)


async def _supervised(loop: ClusterLoop, stop: asyncio.Event) -> None:
    """One cluster's bug must not stop the others: log it and start that cluster again."""
    while not stop.is_set():
        try:
            await loop.run(stop)
        except Exception:
            log.exception("%s: metrics loop crashed; restarting in %g s", loop.slug, RESTART_PAUSE)
            await until_stopped(stop, RESTART_PAUSE)


async def run(stop: asyncio.Event, interval: float) -> None:
    configs = get_cluster_configs()
    rows = await sync_to_async(sync_cluster_rows)()
    loops = [ClusterLoop(c, rows[c.slug].pk, interval) for c in configs]
    log.info("metrics: sampling %d cluster(s) every %g s", len(loops), interval)
    await asyncio.gather(*(_supervised(loop, stop) for loop in loops))
