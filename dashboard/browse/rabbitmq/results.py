"""Results of RabbitMQ write forms, shown after a redirect, and their idempotency keys.

A write form (publish, peek) answers its POST with a redirect to a page
carrying a one-time token; the page shows the outcome kept under that token,
so Back and Reload show it again and never send the write twice. Small
outcomes live in the session; a peek's messages (up to ``MQB_RABBITMQ_PEEK_MAX``
bodies of ``MQB_DISPLAY_LIMIT`` bytes each) are kept, rendered, in Redis for
``MQB_RABBITMQ_PEEK_TTL`` seconds, and only the session that peeked may read them.

Each form also carries an idempotency key: the first POST with a key claims it
in Redis (``SET NX``), a second one (a double click) waits for the first one's
token and redirects to the same result instead of writing again. When Redis is
down, the session remembers the keys instead (a double submit of two requests
in flight at once may then write twice).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio
from django.conf import settings
from django.http import HttpRequest
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

RESULTS_KEY = "mqb.rabbitmq.results"
KEYS_KEY = "mqb.rabbitmq.idempotency"
MAX_RESULTS = 10
MAX_KEYS = 50
KEY_TTL = 24 * 3600  # how long a form's idempotency key is remembered
WAIT_FOR_FIRST = 30.0  # seconds a double submit waits for the first one's result
PENDING = "pending"


def new_key() -> str:
    """An idempotency key for a freshly shown form."""
    return secrets.token_urlsafe(18)


def _prefix() -> str:
    return f"{settings.MQB_CHANNEL_PREFIX}:rabbitmq-result"


def _client() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        settings.REDIS_URL, socket_timeout=3, socket_connect_timeout=2
    )


def _owner(request: HttpRequest) -> str:
    return str(getattr(request.user, "pk", None) or "")


async def claim(request: HttpRequest, kind: str, key: str) -> str | None:
    """Claim the form's idempotency ``key``: None for the first POST with it (go ahead and
    write), else the token of the result of the POST that claimed it first."""
    if not key:
        return None
    remembered = (await request.session.aget(KEYS_KEY, {})).get(f"{kind}:{key}")
    if remembered:
        return str(remembered)
    name = f"{_prefix()}:key:{kind}:{_owner(request)}:{key}"
    client = _client()
    try:
        if await client.set(name, PENDING, nx=True, ex=KEY_TTL):
            return None
        deadline = time.monotonic() + WAIT_FOR_FIRST
        while time.monotonic() < deadline:
            value = await client.get(name)
            if isinstance(value, bytes) and value != PENDING.encode():
                return value.decode()
            await asyncio.sleep(0.1)
        return None  # the first POST never finished: this one writes
    except (RedisError, OSError) as exc:
        log.warning("idempotency key not claimed in Redis: %s", exc)
        return None
    finally:
        await client.aclose()


async def release(request: HttpRequest, kind: str, key: str) -> None:
    """Forget a claimed key whose POST failed before any outcome (e.g. refused)."""
    if not key:
        return
    client = _client()
    try:
        await client.delete(f"{_prefix()}:key:{kind}:{_owner(request)}:{key}")
    except (RedisError, OSError) as exc:
        log.warning("idempotency key not released: %s", exc)
    finally:
        await client.aclose()


@asynccontextmanager
async def claimed(request: HttpRequest, kind: str, key: str) -> AsyncIterator[None]:
    """Release the claimed ``key`` if the block raises (its write may be retried)."""
    try:
        yield
    except BaseException:
        await release(request, kind, key)
        raise


async def settle(request: HttpRequest, kind: str, key: str, token: str) -> None:
    """Record that the POST holding ``key`` ended with the result ``token``."""
    if not key:
        return
    keys = dict(await request.session.aget(KEYS_KEY, {}))
    keys[f"{kind}:{key}"] = token
    await request.session.aset(KEYS_KEY, dict(list(keys.items())[-MAX_KEYS:]))
    # Saved now: a waiting double submit redirects to this result as soon as Redis has it.
    await request.session.asave()
    client = _client()
    try:
        await client.set(f"{_prefix()}:key:{kind}:{_owner(request)}:{key}", token, ex=KEY_TTL)
    except (RedisError, OSError) as exc:
        log.warning("idempotency key not settled in Redis: %s", exc)
    finally:
        await client.aclose()


async def save(request: HttpRequest, kind: str, outcome: dict[str, Any]) -> str:
    """Keep a (small, JSON-able) outcome in the session; returns its token."""
    token = secrets.token_urlsafe(12)
    results = dict(await request.session.aget(RESULTS_KEY, {}))
    results[token] = {"kind": kind, **outcome}
    await request.session.aset(RESULTS_KEY, dict(list(results.items())[-MAX_RESULTS:]))
    return token


async def load(request: HttpRequest, kind: str, token: str | None) -> dict[str, Any] | None:
    """The outcome kept under ``token`` by this session, or None."""
    if not token:
        return None
    found = (await request.session.aget(RESULTS_KEY, {})).get(token)
    if not isinstance(found, dict) or found.get("kind") != kind:
        return None
    return found


async def keep_html(token: str, html: str) -> bool:
    """Keep a rendered result (a peek's messages) in Redis; False when Redis refused it."""
    client = _client()
    try:
        await client.set(f"{_prefix()}:html:{token}", html, ex=settings.MQB_RABBITMQ_PEEK_TTL)
    except (RedisError, OSError) as exc:
        log.warning("rendered result not kept: %s", exc)
        return False
    finally:
        await client.aclose()
    return True


async def load_html(token: str) -> str | None:
    """A rendered result kept by :func:`keep_html` (check the session's token first)."""
    client = _client()
    try:
        value = await client.get(f"{_prefix()}:html:{token}")
    except (RedisError, OSError) as exc:
        log.warning("rendered result not readable: %s", exc)
        return None
    finally:
        await client.aclose()
    return value.decode() if isinstance(value, bytes) else None
