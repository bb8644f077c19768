"""Django's Redis cache backend, telling every web process's memo which keys changed.

Writes of keys under ``core.keymemo.MEMO_PREFIXES`` (sessions, logged-in users)
are published on the memo channel after they are made, and dropped from this
process's own memo before the call returns (``core.keymemo`` says why). Every
other key is written exactly as Django's backend writes it. ``clear()`` (a
``FLUSHDB``) drops every memo's every key.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import redis
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.redis import RedisCache as DjangoRedisCache

from dashboard.core import keymemo

log = logging.getLogger(__name__)


class RedisCache(DjangoRedisCache):
    def memo_location(self) -> str:
        """The Redis URL a memo of this cache subscribes to (the first server)."""
        servers: list[str] = self._servers  # type: ignore[attr-defined]
        return str(servers[0])

    def _changed(self, keys: Iterable[Any], version: int | None) -> None:
        made = [
            self.make_and_validate_key(key, version=version)
            for key in keys
            if isinstance(key, str) and keymemo.memoized(key)
        ]
        if made:
            self._tell(made)

    def _tell(self, made: list[str]) -> None:
        own = keymemo.existing_memo(self.memo_location(), self.key_prefix)
        if own is not None:
            own.drop(made)
        try:
            self._cache.get_client(None, write=True).publish(  # type: ignore[attr-defined]
                keymemo.changed_channel(self.key_prefix), keymemo.changed_message(made)
            )
        except (redis.RedisError, OSError) as exc:
            # The write itself went through; other processes keep what they read for at
            # most MQB_AUTH_MEMO_SECONDS, and a failing Redis ends their subscriptions.
            log.warning("could not publish a cache change (%d keys): %s", len(made), exc)

    def add(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> bool:
        added: bool = super().add(key, value, timeout, version)
        if added:
            self._changed([key], version)
        return added

    def set(
        self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> None:
        super().set(key, value, timeout, version)
        self._changed([key], version)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        touched: bool = super().touch(key, timeout, version)
        self._changed([key], version)
        return touched

    def delete(self, key: Any, version: int | None = None) -> bool:
        deleted: bool = super().delete(key, version)
        self._changed([key], version)
        return deleted

    def set_many(
        self, data: dict[Any, Any], timeout: Any = DEFAULT_TIMEOUT, version: int | None = None
    ) -> list[Any]:
        failed: list[Any] = super().set_many(data, timeout, version)
        self._changed(data, version)
        return failed

    def delete_many(self, keys: Iterable[Any], version: int | None = None) -> None:
        keys = list(keys)
        super().delete_many(keys, version)
        self._changed(keys, version)

    def clear(self) -> None:
        super().clear()
        self._tell([keymemo.DROP_ALL])
