"""The dashboard's own Redis: clients per event loop, and the metrics keys.

Keys carry ``MQB_CHANNEL_PREFIX``, so test runs (and two dashboards on one
Redis) never see each other's keys.
"""

from __future__ import annotations

import asyncio
import weakref
from functools import cache

import redis
import redis.asyncio as aioredis
from django.conf import settings

_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aioredis.Redis] = (
    weakref.WeakKeyDictionary()
)
TIMEOUT = 2.0


def async_client() -> aioredis.Redis:
    """A client for the running event loop (asyncio connections belong to their loop)."""
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = aioredis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
        )
    return client


@cache
def sync_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
    )


def key(*parts: str) -> str:
    return ":".join((settings.MQB_CHANNEL_PREFIX, "metrics", *parts))
