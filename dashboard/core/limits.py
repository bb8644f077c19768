"""Per-user shares of a web process's scarce resources: Kafka read threads and live tails.

One viewer must not take what every other user needs: 40 parallel searches
used to queue every other user's browse behind them until it timed out (504),
and 40 live tails added 200 threads to Daphne. So, per user and per web
process (Daphne serves every request of a process on one event loop; several
processes each count on their own):

- ``MQB_USER_MAX_KAFKA_READS`` Kafka reads (browse, search, one record) in
  flight at once; one more is refused with :class:`Busy` (HTTP 429). The reads
  run on ``MQB_KAFKA_READ_THREADS`` threads of their own, and a freed thread
  goes to the waiting user who holds the fewest, so a second user always gets
  the next one; a user never holds more than their share, even with reads
  whose requests were abandoned while their thread still ran.
- ``MQB_USER_MAX_TAILS`` live tails watched at once (counted by
  :data:`TAIL_WATCHERS` in the tail websocket).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import math
import threading
from collections import Counter
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from dashboard.core.api import Refusal


class Busy(Refusal):
    """A user asked for more than their share; ``retry_after`` in seconds (API: 429)."""

    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def user_key(user: Any) -> str:
    """Whose share a request uses: the user's primary key."""
    return f"user:{getattr(user, 'pk', None)}"


class UserCounter:
    """How many of something each user holds now; ``take`` refuses beyond ``limit``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: Counter[str] = Counter()

    def take(self, key: str, limit: int, message: str) -> Callable[[], None]:
        """One more for ``key``, or :class:`Busy`; returns the release (safe to call twice)."""
        with self._lock:
            if self._held[key] >= max(1, limit):
                raise Busy(message)
            self._held[key] += 1
        released = False

        def release() -> None:
            nonlocal released
            with self._lock:
                if released:
                    return
                released = True
                self._held[key] -= 1
                if self._held[key] <= 0:
                    del self._held[key]

        return release

    def held(self, key: str) -> int:
        with self._lock:
            return self._held[key]


TAIL_WATCHERS = UserCounter()


@dataclass(eq=False)
class _Waiter:
    key: str
    seq: int
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]
    granted: bool = False


class FairPool:
    """``size`` threads shared by users: at most ``per_user`` requests each, fair hand-over.

    ``async with pool.slot(key) as executor`` admits the request (or raises
    :class:`Busy`), waits for a thread, and gives an executor that runs the
    request's blocking calls on it. The thread counts as the user's until the
    last call submitted to it has returned, even when the request was given up
    earlier (a client that went away, a timeout): a blocking librdkafka read
    cannot be interrupted, and its thread is not free until it ends.
    """

    def __init__(self, size: int, per_user: Callable[[], int], what: str) -> None:
        self.size = max(1, size)
        self.per_user = per_user
        self.what = what
        self.executor = concurrent.futures.ThreadPoolExecutor(
            self.size, thread_name_prefix="kafka-read"
        )
        self._lock = threading.Lock()
        self._admitted: Counter[str] = Counter()
        self._threads: Counter[str] = Counter()
        self._busy = 0
        self._waiters: list[_Waiter] = []
        self._seq = itertools.count()

    @asynccontextmanager
    async def slot(self, key: str) -> AsyncIterator[concurrent.futures.Executor]:
        limit = max(1, self.per_user())
        with self._lock:
            if self._admitted[key] >= limit:
                raise Busy(
                    f"You already have {self._admitted[key]} {self.what} running, the most one"
                    f" user may run at once (MQB_USER_MAX_KAFKA_READS={limit}). Wait for one"
                    " to finish, then try again.",
                    retry_after=max(1, min(60, math.ceil(settings.MQB_KAFKA_SEARCH_MAX_SECONDS))),
                )
            self._admitted[key] += 1
        try:
            await self._acquire(key)
            lease = _Lease(self, key)
            try:
                yield lease
            finally:
                lease.close()
        finally:
            with self._lock:
                self._admitted[key] -= 1
                if self._admitted[key] <= 0:
                    del self._admitted[key]

    def stats(self) -> dict[str, int]:
        """Threads in use and requests admitted (for tests and diagnostics)."""
        with self._lock:
            return {"busy": self._busy, "admitted": sum(self._admitted.values())}

    async def _acquire(self, key: str) -> None:
        loop = asyncio.get_running_loop()
        waiter = _Waiter(key, next(self._seq), loop, loop.create_future())
        with self._lock:
            self._waiters.append(waiter)
            self._dispatch()
            if waiter.granted:
                return
        try:
            await waiter.future
        except asyncio.CancelledError:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
                else:  # granted, but given up before it woke
                    self._release(key)
            raise

    def _dispatch(self) -> None:
        """Hand free threads to waiters, the user holding the fewest first (lock held)."""
        limit = max(1, self.per_user())
        while self._busy < self.size:
            eligible = [w for w in self._waiters if self._threads[w.key] < limit]
            if not eligible:
                return
            chosen = min(eligible, key=lambda w: (self._threads[w.key], w.seq))
            self._waiters.remove(chosen)
            chosen.granted = True
            self._busy += 1
            self._threads[chosen.key] += 1
            if not chosen.future.done():
                chosen.loop.call_soon_threadsafe(_wake, chosen.future)

    def _release(self, key: str) -> None:
        """One thread of ``key`` is free again (lock held)."""
        self._busy -= 1
        self._threads[key] -= 1
        if self._threads[key] <= 0:
            del self._threads[key]
        self._dispatch()

    def release(self, key: str) -> None:
        with self._lock:
            self._release(key)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _Lease(concurrent.futures.Executor):
    """One thread of a :class:`FairPool`, held until the request and its calls are done."""

    def __init__(self, pool: FairPool, key: str) -> None:
        self._pool = pool
        self._key = key
        self._lock = threading.Lock()
        self._running = 0
        self._closed = False
        self._released = False

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            if self._closed:
                raise RuntimeError("this thread of the Kafka read pool was given back")
            self._running += 1

        def run() -> Any:
            try:
                return fn(*args, **kwargs)
            finally:
                with self._lock:
                    self._running -= 1
                self._maybe_release()

        try:
            future = self._pool.executor.submit(run)
        except BaseException:
            self._forget()
            raise
        # Cancelled before a thread picked it up: ``run`` never runs to say it ended.
        future.add_done_callback(lambda f: self._forget() if f.cancelled() else None)
        return future

    def _forget(self) -> None:
        with self._lock:
            self._running -= 1
        self._maybe_release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self._maybe_release()

    def _maybe_release(self) -> None:
        with self._lock:
            if not self._closed or self._running or self._released:
                return
            self._released = True
        self._pool.release(self._key)


_kafka_reads: FairPool | None = None
_kafka_reads_lock = threading.Lock()


def kafka_reads() -> FairPool:
    """The process's pool of Kafka read threads (``MQB_KAFKA_READ_THREADS``)."""
    global _kafka_reads
    with _kafka_reads_lock:
        if _kafka_reads is None:
            _kafka_reads = FairPool(
                settings.MQB_KAFKA_READ_THREADS,
                lambda: int(settings.MQB_USER_MAX_KAFKA_READS),
                "Kafka reads (browse or search)",
            )
        return _kafka_reads
