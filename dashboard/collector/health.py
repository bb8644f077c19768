"""Cluster health: checked every interval, stored, and pushed to the overview."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from channels.layers import get_channel_layer
from redis.exceptions import RedisError

from dashboard.core.clusters import get_all_cluster_health
from dashboard.overview.events import ClusterHealthEvent
from dashboard.overview.websockets import OVERVIEW_GROUP

log = logging.getLogger("dashboard.collector.health")


async def sample_once() -> None:
    layer = get_channel_layer()
    for health in await get_all_cluster_health():
        payload = ClusterHealthEvent.of_health(health).as_json()
        try:
            await layer.group_send(OVERVIEW_GROUP, payload)
            await layer.group_send(f"cluster.{health.slug}", payload)
        except (OSError, RedisError) as exc:
            # Redis down: the check is stored; browsers catch up on the next push.
            log.warning("cannot push to the channel layer: %s", exc)


async def run(stop: asyncio.Event, interval: float) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await sample_once()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.1, interval - (loop.time() - started)))
