"""Who is watching what: entities sampled every second instead of every interval.

A websocket that shows an entity adds a member to its cluster's sorted set
(score: when the mark expires) and renews it every few seconds; the collector
reads the unexpired members every second. A browser that vanishes without
closing its socket stops being counted after ``MQB_METRICS_WATCH_TTL`` seconds.
Each socket has its own member, so one viewer leaving does not stop the fast
sampling another viewer still needs.
"""

from __future__ import annotations

import json
import time

from django.conf import settings

from dashboard.metrics.redis_keys import async_client, key


def _key(cluster: str) -> str:
    return key("watch", cluster)


def _member(entity_type: str, entity: str, token: str) -> str:
    return json.dumps([entity_type, entity, token])


async def add_watcher(cluster: str, entity_type: str, entity: str, token: str) -> None:
    """Add or renew a watch mark."""
    ttl = settings.MQB_METRICS_WATCH_TTL
    client = async_client()
    async with client.pipeline(transaction=False) as pipe:
        pipe.zadd(_key(cluster), {_member(entity_type, entity, token): time.time() + ttl})
        pipe.expire(_key(cluster), ttl * 2)
        await pipe.execute()


async def remove_watcher(cluster: str, entity_type: str, entity: str, token: str) -> None:
    await async_client().zrem(_key(cluster), _member(entity_type, entity, token))


async def get_watched(cluster: str) -> set[tuple[str, str]]:
    """The (entity type, entity) pairs with at least one unexpired watch mark."""
    client = async_client()
    async with client.pipeline(transaction=False) as pipe:
        pipe.zremrangebyscore(_key(cluster), "-inf", time.time())
        pipe.zrange(_key(cluster), 0, -1)
        _, members = await pipe.execute()
    watched = set()
    for raw in members:
        try:
            entity_type, entity, _ = json.loads(raw)
        except (ValueError, TypeError):
            continue
        watched.add((str(entity_type), str(entity)))
    return watched
