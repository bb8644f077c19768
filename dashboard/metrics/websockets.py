"""Websockets of live metrics: one cluster, queue, topic or consumer group per socket.

    ws/metrics/cluster/?cluster=<slug>
    ws/metrics/queue/?cluster=<slug>&vhost=<vhost>&name=<queue>
    ws/metrics/topic/?cluster=<slug>&name=<topic>
    ws/metrics/group/?cluster=<slug>&name=<group id>

The Origin is checked by the ASGI stack (``AllowedHostsOriginValidator``);
``connect`` refuses sockets without a logged-in session (4401), for unknown
clusters (4404) and with missing parameters (4400). An accepted socket joins
its entity's channel group, marks the entity as watched (renewed while the
socket lives, so the collector samples it every second) and is sent a
``metrics.hello`` with the cluster's last known status. Then it relays what
the collector pushes: ``metrics.point`` (a new sample of the entity),
``metrics.status`` (cluster unavailable since..., or back), and on the
cluster socket ``metrics.cluster`` (totals) and ``cluster.health``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from typing import Any, ClassVar
from urllib.parse import parse_qs

from django.conf import settings
from redis.exceptions import RedisError

from brokers.base import ClusterConfig, ConfigError
from brokers.base.metrics import FIELDS, queue_entity
from brokers.registry import kind_of
from dashboard.core.channel_groups import (
    cluster_group,
    consumer_group_group,
    queue_group,
    topic_group,
)
from dashboard.core.clusters import get_cluster_config
from dashboard.core.websockets import UNAUTHENTICATED, Relaying
from dashboard.metrics.events import (
    EntityType,
    MetricsCluster,
    MetricsHello,
    MetricsPoint,
    MetricsStatus,
)
from dashboard.metrics.snapshot import read_status
from dashboard.metrics.watchers import add_watcher, remove_watcher
from dashboard.overview.events import ClusterHealthEvent

log = logging.getLogger(__name__)
BAD_REQUEST = 4400
NOT_FOUND = 4404


def _sampled(config: ClusterConfig) -> tuple[str, ...]:
    """The entity types sampled on this cluster: the cluster and its kind's entities."""
    metrics = kind_of(config).metrics
    return ("cluster", *metrics.entity_types) if metrics is not None else ()


class MetricsConsumer(Relaying):
    entity_type: ClassVar[EntityType]
    relayed = frozenset({"metrics.point", "metrics.status", "metrics.cluster", "cluster.health"})

    cluster = ""
    entity = ""
    group = ""
    _renewal: asyncio.Task[None] | None = None

    def target(self, params: dict[str, str]) -> tuple[str, str] | None:
        """(stored entity name, channel group) from the query string; None if incomplete."""
        raise NotImplementedError

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        raw = parse_qs(
            self.scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True
        )
        params = {k: v[0] for k, v in raw.items() if v}
        self.cluster = params.get("cluster", "")
        try:
            config = get_cluster_config(self.cluster)
        except ConfigError:
            await self.close(code=NOT_FOUND)
            return
        found = self.target(params) if self.entity_type in _sampled(config) else None
        if found is None:
            await self.close(code=BAD_REQUEST)
            return
        self.entity, self.group = found
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self._watch()
        self._renewal = asyncio.create_task(self._renew())
        hello = MetricsHello(
            cluster=self.cluster,
            kind=config.kind,
            entity_type=self.entity_type,
            entity=self.entity,
            fields=list(FIELDS),
            interval=settings.MQB_SAMPLE_INTERVAL,
            watch_interval=settings.MQB_METRICS_WATCH_INTERVAL,
            status=await self._status(),
        )
        await self.send_json(hello.as_json())

    async def disconnect(self, code: int) -> None:
        if self._renewal is not None:
            self._renewal.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewal
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)
            with contextlib.suppress(OSError, RedisError):
                await remove_watcher(self.cluster, self.entity_type, self.entity, self.channel_name)

    async def _watch(self) -> None:
        try:
            await add_watcher(self.cluster, self.entity_type, self.entity, self.channel_name)
        except (OSError, RedisError) as exc:
            log.info("watch mark not renewed: %s", exc)

    async def _renew(self) -> None:
        every = max(1.0, settings.MQB_METRICS_WATCH_TTL / 3)
        # The first renewal at a random point of the period: charts opened together
        # (a page of them, a dashboard restarted under its viewers) would otherwise
        # renew in one burst every period, each a Redis round trip or two.
        await asyncio.sleep(random.uniform(0.1, 1.0) * every)  # noqa: S311 - spread, not secret
        while True:
            await self._watch()
            # Joining again is cheap, and heals a membership a restarted Redis forgot.
            with contextlib.suppress(OSError, RedisError):
                await self.channel_layer.group_add(self.group, self.channel_name)
            await asyncio.sleep(every)

    async def _status(self) -> dict[str, Any]:
        try:
            return await read_status(self.cluster)
        except (OSError, RedisError):
            return {}

    # -- messages from the collector ------------------------------------------------

    async def metrics_point(self, event: dict[str, Any]) -> None:
        await self.send_json(MetricsPoint.of(event).as_json())

    async def metrics_status(self, event: dict[str, Any]) -> None:
        await self.send_json(MetricsStatus.of(event).as_json())

    async def metrics_cluster(self, event: dict[str, Any]) -> None:
        await self.send_json(MetricsCluster.of(event).as_json())

    async def cluster_health(self, event: dict[str, Any]) -> None:
        await self.send_json(ClusterHealthEvent.of(event).as_json())


class ClusterMetricsConsumer(MetricsConsumer):
    entity_type = "cluster"

    def target(self, params: dict[str, str]) -> tuple[str, str] | None:
        return self.cluster, cluster_group(self.cluster)


class QueueMetricsConsumer(MetricsConsumer):
    entity_type = "queue"

    def target(self, params: dict[str, str]) -> tuple[str, str] | None:
        vhost, name = params.get("vhost"), params.get("name")
        if not vhost or name is None:
            return None
        return queue_entity(vhost, name), queue_group(self.cluster, vhost, name)


class TopicMetricsConsumer(MetricsConsumer):
    entity_type = "topic"

    def target(self, params: dict[str, str]) -> tuple[str, str] | None:
        name = params.get("name")
        return None if not name else (name, topic_group(self.cluster, name))


class GroupMetricsConsumer(MetricsConsumer):
    entity_type = "group"

    def target(self, params: dict[str, str]) -> tuple[str, str] | None:
        name = params.get("name")
        return None if not name else (name, consumer_group_group(self.cluster, name))
