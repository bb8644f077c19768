"""Django's ASGI handler with a request's sync work on a few long-lived threads.

Django's ``ASGIHandler`` runs each request in a new ``ThreadSensitiveContext``:
the first ``sync_to_async`` of a request (Django's own ``request_started``
receivers, at the latest) starts a thread for it, and the request's end joins
that thread. Database connections are per thread, so every request also opened
a database connection and closed it again.

:class:`LanedASGIHandler` gives each request a :class:`RequestExecutor`
instead: at its first ``sync_to_async`` the request takes one of ``threads``
long-lived threads (a lane), the one with the fewest sync calls waiting or
running at that moment (then the fewest requests), and all of its
thread-sensitive work runs there until it ends, as
Django promises (one thread per request: its database connection, a
transaction inside one sync call). Requests share lanes: a lane runs one call
at a time, so a slow sync call delays the requests on its lane, never those on
the others, and a new request goes to a lane that is not stuck in it. Each lane
keeps its database connection (``CONN_MAX_AGE``, checked by
``CONN_HEALTH_CHECKS`` before a request uses it); Django's request receivers
still run on the request's lane and close a connection that is too old or
broken, as for any persistent connection.

Settings: ``MQB_WEB_SYNC_THREADS`` (the lanes of a web process; 0: Django's
handler, a thread per request, and no persistent connections).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import ThreadSensitiveContext
from django.core.handlers.asgi import ASGIHandler
from django.db import connections

P = ParamSpec("P")
T = TypeVar("T")
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]


class Lane:
    """One long-lived thread, the requests it serves now and the calls queued or running."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"django-lane-{number}"
        )
        self.requests = 0
        self.calls = 0


class Lanes:
    """A fixed set of lanes; a request takes the least busy one and gives it back."""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError("a web process needs at least one sync thread")
        self.lanes = tuple(Lane(n) for n in range(threads))
        self._lock = threading.Lock()
        self._turn = itertools.count()

    def take(self) -> Lane:
        """The lane with the fewest calls waiting or running (one stuck in a slow call has
        one at least), then the fewest requests; ties go round."""
        with self._lock:
            start = next(self._turn) % len(self.lanes)
            ring = self.lanes[start:] + self.lanes[:start]
            lane = min(ring, key=lambda candidate: (candidate.calls, candidate.requests))
            lane.requests += 1
            return lane

    def give_back(self, lane: Lane) -> None:
        with self._lock:
            lane.requests -= 1

    def submit(
        self, lane: Lane, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[T]:
        with self._lock:
            lane.calls += 1
        future = lane.executor.submit(fn, *args, **kwargs)
        future.add_done_callback(lambda _done: self._call_ended(lane))
        return future

    def _call_ended(self, lane: Lane) -> None:
        with self._lock:
            lane.calls -= 1

    def run_on_each(self, func: Callable[[], object]) -> None:
        """Run ``func`` once on every lane's thread (after what is queued there) and wait."""
        for future in [lane.executor.submit(func) for lane in self.lanes]:
            future.result()

    def close(self) -> None:
        """Close each lane's database connections, then stop its thread."""
        self.run_on_each(connections.close_all)
        for lane in self.lanes:
            lane.executor.shutdown(wait=True)


class RequestExecutor(Executor):
    """One request's executor: a lane, taken at the first call and kept to the end."""

    def __init__(self, lanes: Lanes) -> None:
        self._lanes = lanes
        self.lane: Lane | None = None

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if self.lane is None:
            self.lane = self._lanes.take()
        return self._lanes.submit(self.lane, fn, *args, **kwargs)

    def release(self) -> None:
        if self.lane is not None:
            self._lanes.give_back(self.lane)
            self.lane = None


class LanedASGIHandler(ASGIHandler):
    """``ASGIHandler`` with each request's sync work on a long-lived lane (see the module)."""

    def __init__(self, threads: int) -> None:
        super().__init__()
        self.lanes = Lanes(threads)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        executor = RequestExecutor(self.lanes)
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            executor.release()
