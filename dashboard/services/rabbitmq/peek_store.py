"""Peeked message bodies, kept in Redis for a while so the full bytes can be downloaded.

A page shows at most ``MQB_DISPLAY_LIMIT`` bytes of a body; the rest is a
download. Peeking again to serve the download would reorder the queue once
more and might not find the same message, so the bytes read by the peek are
kept instead: in Redis (the dashboard's own plumbing, shared by every web
process) under an unguessable token, for ``MQB_RABBITMQ_PEEK_TTL`` seconds. The
token is also remembered in the user's session, and only that session may
download. A 10 MB body is one 10 MB Redis value. If Redis is down the peek
still works and says downloads are unavailable.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterable

import redis.asyncio
from django.conf import settings
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def _key(token: str, position: int) -> str:
    return f"{settings.MQB_CHANNEL_PREFIX}:rabbitmq-peek:{token}:{position}"


def _client() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        settings.REDIS_URL, socket_timeout=3, socket_connect_timeout=2
    )


async def store_bodies(bodies: Iterable[tuple[int, bytes]]) -> str | None:
    """Keep ``(position, body)`` pairs; return their token, or None if Redis failed."""
    token = secrets.token_urlsafe(18)
    client = _client()
    try:
        async with client.pipeline(transaction=False) as pipe:
            for position, body in bodies:
                pipe.set(_key(token, position), body, ex=settings.MQB_RABBITMQ_PEEK_TTL)
            await pipe.execute()
    except (RedisError, OSError) as exc:
        log.warning("peeked bodies not kept for download: %s", exc)
        return None
    finally:
        await client.aclose()
    return token


async def load_body(token: str, position: int) -> bytes | None:
    """The kept body, or None when expired or never kept."""
    client = _client()
    try:
        value = await client.get(_key(token, position))
    except (RedisError, OSError) as exc:
        log.warning("peeked body not readable: %s", exc)
        return None
    finally:
        await client.aclose()
    return value if isinstance(value, bytes) else None
