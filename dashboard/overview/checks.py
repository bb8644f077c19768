"""*Check now*: one live health check per cluster at a time, shared by whoever asks.

A check younger than ``MQB_HEALTH_CHECK_GAP`` seconds (by the collector or an earlier
*check now*) answers as it is. Otherwise the first asker, in any web process, takes a
Redis lock for the cluster and runs the check; everyone asking meanwhile waits for
that check's stored result instead of opening connections of their own. The result
is stored on the cluster's row and pushed to every open overview, like the
collector's own checks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import weakref
from datetime import UTC, datetime

import redis.asyncio
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from redis.exceptions import RedisError

from dashboard.core.clusters import (
    ClusterHealth,
    get_cluster_config,
    get_cluster_health,
    record_health,
    stored_health,
)
from dashboard.overview.events import ClusterHealthEvent
from dashboard.overview.websockets import OVERVIEW_GROUP

log = logging.getLogger(__name__)

POLL = 0.1
"""seconds between looks at the stored check while another asker's check runs"""


def _lock_name(slug: str) -> str:
    return f"{settings.MQB_CHANNEL_PREFIX}:health-check:{slug}"


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, redis.asyncio.Redis] = (
    weakref.WeakKeyDictionary()
)


def _connect() -> redis.asyncio.Redis:
    """The process's Redis client for the check's lock, one per event loop (its pool
    keeps connections open between checks)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = redis.asyncio.Redis.from_url(
            settings.REDIS_URL, socket_timeout=3, socket_connect_timeout=2
        )
    return client


async def _stored(slug: str) -> ClusterHealth:
    return (await sync_to_async(stored_health)((slug,)))[0]


async def push(health: ClusterHealth) -> None:
    """Send a check to every open overview and the cluster's own pages."""
    payload = ClusterHealthEvent.of_health(health).as_json()
    try:
        layer = get_channel_layer()
        await layer.group_send(OVERVIEW_GROUP, payload)
        await layer.group_send(f"cluster.{health.slug}", payload)
    except (OSError, RedisError) as exc:
        # Redis down: the check is stored; pages catch up on the next push.
        log.warning("cannot push to the channel layer: %s", exc)


async def _run_check(slug: str) -> ClusterHealth:
    health = await record_health(await get_cluster_health(get_cluster_config(slug)))
    await push(health)
    return health


async def check_now(slug: str) -> ClusterHealth:
    """The cluster's health as of now, checked live at most once at a time per cluster.

    Raises ``ConfigError`` for an unknown cluster."""
    config = get_cluster_config(slug)
    asked = datetime.now(UTC)
    current = await _stored(slug)
    if current.age_seconds is not None and current.age_seconds < settings.MQB_HEALTH_CHECK_GAP:
        return current
    client = _connect()
    try:
        first = bool(await client.set(_lock_name(slug), "1", nx=True, ex=int(config.timeout + 5)))
    except (OSError, RedisError) as exc:
        log.warning("check now without a shared lock (Redis: %s)", exc)
        return await _run_check(slug)
    if first:
        try:
            return await _run_check(slug)
        finally:
            try:
                await client.delete(_lock_name(slug))
            except (OSError, RedisError) as exc:
                log.warning("health check lock left to expire: %s", exc)
    return await _wait_for_check(client, slug, asked, config.timeout + 3)


async def _wait_for_check(
    client: redis.asyncio.Redis, slug: str, asked: datetime, within: float
) -> ClusterHealth:
    """The check another asker runs: its stored result once it is newer than ``asked``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        await asyncio.sleep(POLL)
        current = await _stored(slug)
        if current.checked_at is not None and current.checked_at >= asked:
            return dataclasses.replace(current, source="live")
        try:
            if not await client.exists(_lock_name(slug)):
                break
        except (OSError, RedisError):
            break
    return await _stored(slug)
