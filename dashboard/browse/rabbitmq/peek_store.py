"""Peeked message bodies, kept in Redis for a while so the full bytes can be downloaded.

A page shows at most ``MQB_DISPLAY_LIMIT`` bytes of a body; the rest is a
download. Peeking again to serve the download would reorder the queue once
more and might not find the same message, so the bytes read by the peek are
kept instead: in Redis (the dashboard's own plumbing, shared by every web
process) under an unguessable token, for ``MQB_RABBITMQ_PEEK_TTL`` seconds. The
token is also remembered in the user's session, and only that session may
download.

Redis also carries Celery's queues and the Channels layer, so the kept bytes
are capped: ``MQB_RABBITMQ_PEEK_STORE_USER_BYTES`` per user, whose own oldest
peeks are dropped to make room, and ``MQB_RABBITMQ_PEEK_STORE_TOTAL_BYTES`` in
all. One user never drops another's peeks: when the others fill the store, or
one peek alone is over a cap, its bodies are not kept, and the peek still
shows what it read and says why there is no download. So does a Redis that is
down or refuses writes (``maxmemory`` reached under ``noeviction``).

Layout under ``<MQB_CHANNEL_PREFIX>:rabbitmq-peek``: one hash per peek
(``body:<token>``, field = position), and an index (expiry times, sizes,
owners, bytes per user, total) that one Lua script updates atomically: it
forgets expired peeks, makes room, and stores, so concurrent peeks from many
web processes keep exact counts.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis.asyncio
from django.conf import settings
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS are built inside the script from the prefix: one Redis, not a cluster.
_STORE = """
local prefix, token, user = ARGV[1], ARGV[2], ARGV[3]
local now, ttl = tonumber(ARGV[4]), tonumber(ARGV[5])
local user_cap, total_cap = tonumber(ARGV[6]), tonumber(ARGV[7])
local all, sizes, owners = prefix .. ':all', prefix .. ':sizes', prefix .. ':owners'
local user_bytes, total = prefix .. ':user-bytes', prefix .. ':total'
local function user_index(u) return prefix .. ':user:' .. u end

local function drop(t)
  local size = tonumber(redis.call('HGET', sizes, t) or '0')
  local owner = redis.call('HGET', owners, t)
  redis.call('DEL', prefix .. ':body:' .. t)
  redis.call('ZREM', all, t)
  redis.call('HDEL', sizes, t)
  redis.call('HDEL', owners, t)
  if owner then
    redis.call('ZREM', user_index(owner), t)
    if redis.call('HINCRBY', user_bytes, owner, -size) <= 0 then
      redis.call('HDEL', user_bytes, owner)
    end
  end
  if redis.call('DECRBY', total, size) <= 0 then redis.call('DEL', total) end
end

for _, t in ipairs(redis.call('ZRANGEBYSCORE', all, '-inf', now, 'LIMIT', 0, 1000)) do
  drop(t)
end

local size = 0
for i = 8, #ARGV, 2 do size = size + #ARGV[i + 1] end
if size > user_cap then return {0, 'user', 0} end
local used = tonumber(redis.call('HGET', user_bytes, user) or '0')
local everyone = tonumber(redis.call('GET', total) or '0')
-- Only the user's own peeks may make room: if the others' alone leave too little, give up.
if everyone - used + size > total_cap then return {0, 'total', 0} end
local dropped = 0
while used + size > user_cap or everyone + size > total_cap do
  local oldest = redis.call('ZRANGE', user_index(user), 0, 0)[1]
  if not oldest then break end
  drop(oldest)
  dropped = dropped + 1
  used = tonumber(redis.call('HGET', user_bytes, user) or '0')
  everyone = tonumber(redis.call('GET', total) or '0')
end

local body = prefix .. ':body:' .. token
if #ARGV >= 8 then
  redis.call('HSET', body, unpack(ARGV, 8))
  redis.call('EXPIRE', body, ttl)
end
local expires = now + ttl * 1000
redis.call('ZADD', all, expires, token)
redis.call('ZADD', user_index(user), expires, token)
redis.call('HSET', sizes, token, size)
redis.call('HSET', owners, token, user)
redis.call('HINCRBY', user_bytes, user, size)
redis.call('INCRBY', total, size)
-- The index outlives the newest peek a little, then goes away with it.
for _, key in ipairs({all, sizes, owners, user_bytes, total, user_index(user)}) do
  redis.call('EXPIRE', key, ttl + 60)
end
return {1, '', dropped}
"""


@dataclass(frozen=True)
class StoredBodies:
    """``token`` for downloads, or None with ``note`` saying why they were not kept."""

    token: str | None
    note: str = ""
    dropped: int = 0  # the user's older peeks dropped to make room


def _prefix() -> str:
    return f"{settings.MQB_CHANNEL_PREFIX}:rabbitmq-peek"


def _client() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        settings.REDIS_URL, socket_timeout=3, socket_connect_timeout=2
    )


def _mib(value: int) -> str:
    return f"{value / (1 << 20):g} MiB"


async def store_bodies(bodies: Iterable[tuple[int, bytes]], *, user: str) -> StoredBodies:
    """Keep ``(position, body)`` pairs of one peek by ``user`` (a stable id), within the caps."""
    token = secrets.token_urlsafe(18)
    args: list[str | bytes | int] = [
        _prefix(),
        token,
        user,
        int(time.time() * 1000),
        settings.MQB_RABBITMQ_PEEK_TTL,
        settings.MQB_RABBITMQ_PEEK_STORE_USER_BYTES,
        settings.MQB_RABBITMQ_PEEK_STORE_TOTAL_BYTES,
    ]
    for position, body in bodies:
        args.extend((position, body))
    client = _client()
    try:
        kept, why, dropped = await client.eval(_STORE, 0, *args)
    except (RedisError, OSError) as exc:
        log.warning("peeked bodies not kept for download: %s", exc)
        return StoredBodies(None, f"the dashboard's Redis did not keep them ({exc})")
    finally:
        await client.aclose()
    if kept:
        return StoredBodies(token, dropped=int(dropped))
    if why == b"user":
        return StoredBodies(
            None,
            "they are larger than the download store allows per user"
            f" ({_mib(settings.MQB_RABBITMQ_PEEK_STORE_USER_BYTES)},"
            " MQB_RABBITMQ_PEEK_STORE_USER_BYTES)",
        )
    return StoredBodies(
        None,
        "the download store is full with other users' peeks"
        f" ({_mib(settings.MQB_RABBITMQ_PEEK_STORE_TOTAL_BYTES)},"
        f" MQB_RABBITMQ_PEEK_STORE_TOTAL_BYTES); they expire within"
        f" {settings.MQB_RABBITMQ_PEEK_TTL} s",
    )


async def load_body(token: str, position: int) -> bytes | None:
    """The kept body, or None when expired, dropped or never kept."""
    client = _client()
    try:
        value = await client.hget(f"{_prefix()}:body:{token}", str(position))
    except (RedisError, OSError) as exc:
        log.warning("peeked body not readable: %s", exc)
        return None
    finally:
        await client.aclose()
    return value if isinstance(value, bytes) else None
