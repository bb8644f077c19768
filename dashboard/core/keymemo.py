"""Sessions and users a web process answers from its own memory, dropped on every write.

A logged-in request reads two cache keys from Redis before its view runs: its
session and its user (``core.login``). Under load those two round trips are
most of the work of a request that does little else. A :class:`KeyMemo` keeps
what a web process read of such keys (the bytes Redis gave, with the key's
expiry, read in the same round trip) and answers later reads from memory.

What keeps it right:

- **Every write drops the key everywhere.** The project's cache backend
  (``core.cache.RedisCache``) publishes the name of every key it writes,
  touches or deletes under :data:`MEMO_PREFIXES` on the channel
  ``<cache key prefix>:changed``, and drops it from its own process's memo
  before it returns (a process skips its own messages). Each web process
  follows that channel in a thread of its own. A logout, a password change, a
  demotion or a deactivation in any process (a web process, the Django admin, a
  management command) reaches the others within a Redis round trip; the
  process that made it sees it at once.
- **No subscription, no memo.** The memo answers only while the subscription
  is up. It is emptied when the subscription starts and whenever it is lost
  (the connection fails, or no answer to a ping within
  ``PING_SECONDS + PONG_SECONDS``); until it is back, every read goes to Redis.
- **A read that raced a write is not kept.** Every drop moves a generation
  counter; a read keeps its answer only if no drop happened since it began.
- **Never past the key's own expiry,** and at most ``MQB_AUTH_MEMO_SECONDS``
  (default 30 s) in any case: a write that bypasses Django's cache (a raw
  Redis command) is seen within that time. ``0`` turns the memo off.

Each request still decodes its own copy of the bytes: nothing a request
changes is shared.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Iterable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

# The keys (before Django's prefix and version) whose writes are published and
# which a memo may keep: cached_db sessions and the logged-in users.
MEMO_PREFIXES = ("django.contrib.sessions.cached_db", "auth:user:")
DROP_ALL = "*"  # the message ``cache.clear()`` publishes
MAX_ENTRIES = 20_000
PING_SECONDS = 5.0
PONG_SECONDS = 5.0
RETRY_SECONDS = 1.0


ORIGIN = uuid.uuid4().hex
"""this process, named in the messages it publishes (it drops its own keys itself)"""


def changed_channel(key_prefix: str) -> str:
    return f"{key_prefix}:changed"


def changed_message(keys: Iterable[str]) -> str:
    """What a writer publishes: its origin, then one key per line."""
    return "\n".join((ORIGIN, *keys))


class KeyMemo:
    """Bytes read from Redis, kept while a subscription to ``channel`` is up."""

    def __init__(self, url: str, channel: str, max_seconds: float) -> None:
        self.url = url
        self.channel = channel
        self.max_seconds = max_seconds
        self.generation = 0
        self.live = False
        self._entries: dict[str, tuple[bytes, float]] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._subscribed = threading.Event()

    # -- reads (the event loop) ---------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """The kept bytes of ``key``, or None (not kept, expired, or no subscription)."""
        if not self.live:
            return None
        entry = self._entries.get(key)
        if entry is None:
            return None
        data, deadline = entry
        if time.monotonic() >= deadline:
            with self._lock:
                if self._entries.get(key) is entry:
                    del self._entries[key]
            return None
        return data

    def put(self, key: str, data: bytes, ttl_ms: int, generation: int) -> bool:
        """Keep ``data`` read for ``key`` (``ttl_ms``: its PTTL) if nothing was dropped
        since ``generation`` was taken, before the read. True when kept."""
        if ttl_ms == -2 or ttl_ms == 0:  # gone, or expiring now
            return False
        seconds = self.max_seconds if ttl_ms < 0 else min(self.max_seconds, ttl_ms / 1000)
        deadline = time.monotonic() + seconds
        with self._lock:
            if not self.live or generation != self.generation:
                return False
            if key not in self._entries and len(self._entries) >= MAX_ENTRIES:
                del self._entries[next(iter(self._entries))]  # the oldest kept
            self._entries[key] = (data, deadline)
        return True

    def __len__(self) -> int:
        return len(self._entries)

    # -- drops (any thread) -------------------------------------------------------

    def drop(self, keys: Iterable[str]) -> None:
        with self._lock:
            self.generation += 1
            for key in keys:
                if key == DROP_ALL:
                    self._entries.clear()
                else:
                    self._entries.pop(key, None)

    def _reset(self, live: bool) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()
            self.live = live

    # -- the subscription ---------------------------------------------------------

    def start(self) -> None:
        """Start following the channel (once); the memo answers once subscribed."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._follow, name="mqb-keymemo", daemon=True)
        self._thread.start()

    def wait_live(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout) and self.live

    def stop(self) -> None:
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout=PING_SECONDS + 2)
        self._reset(live=False)

    def _follow(self) -> None:
        failing = False
        while not self._stopping.is_set():
            client = redis.Redis.from_url(
                self.url,
                socket_connect_timeout=5,
                socket_timeout=PING_SECONDS + PONG_SECONDS,
                # A failed connection is seen here (and the memo emptied), never
                # reconnected and resubscribed behind the memo's back.
                retry=Retry(NoBackoff(), 0),
                client_name=f"mqb-keymemo-{os.getpid()}",
            )
            pubsub = client.pubsub()  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(self.channel)
                self._listen(pubsub)
                failing = False
            except (redis.RedisError, OSError) as exc:
                if not failing:
                    log.warning("cache memo off until Redis answers again: %s", exc)
                failing = True
            finally:
                self._subscribed.clear()
                self._reset(live=False)
                try:
                    pubsub.close()
                    client.close()
                except (redis.RedisError, OSError):
                    pass
            self._stopping.wait(RETRY_SECONDS)

    def _listen(self, pubsub: redis.client.PubSub) -> None:
        heard = time.monotonic()
        pinged = False
        while not self._stopping.is_set():
            message = pubsub.get_message(timeout=1.0)
            now = time.monotonic()
            if message is not None:
                heard, pinged = now, False
                kind = message["type"]
                if kind == "subscribe":
                    self._reset(live=True)  # whatever changed before this is not kept
                    self._subscribed.set()
                elif kind == "message":
                    data = message["data"]
                    text = data.decode() if isinstance(data, bytes) else str(data)
                    origin, _, keys = text.partition("\n")
                    if origin != ORIGIN:  # this process dropped its own before publishing
                        self.drop(keys.split("\n"))
            elif not pinged and now - heard >= PING_SECONDS:
                pubsub.ping()
                pinged = True
            elif pinged and now - heard >= PING_SECONDS + PONG_SECONDS:
                raise redis.ConnectionError("no answer to a ping on the memo's subscription")


_memos: dict[tuple[str, str], KeyMemo] = {}
_memos_lock = threading.Lock()


def memo_for(url: str, key_prefix: str, max_seconds: float) -> KeyMemo:
    """This process's memo of the cache at ``url`` under ``key_prefix``, started."""
    channel = changed_channel(key_prefix)
    with _memos_lock:
        memo = _memos.get((url, channel))
        if memo is None:
            memo = _memos[(url, channel)] = KeyMemo(url, channel, max_seconds)
        memo.max_seconds = max_seconds  # for what is kept from now on
    memo.start()
    return memo


def existing_memo(url: str, key_prefix: str) -> KeyMemo | None:
    """This process's memo of that cache if one was started (for a writer's own drop)."""
    return _memos.get((url, changed_channel(key_prefix)))


def memoized(key: str) -> bool:
    """Whether ``key`` (before Django's prefix and version) is one a memo may keep."""
    return key.startswith(MEMO_PREFIXES)
