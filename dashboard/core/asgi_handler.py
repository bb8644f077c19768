"""Django's ASGI handler with a request's sync work on a few long-lived threads.

Django's ``ASGIHandler`` runs each request in a new ``ThreadSensitiveContext``:
the first ``sync_to_async`` of a request (Django's own ``request_started``
receivers, at the latest) starts a thread for it, and the request's end joins
that thread; closing the response is one more trip to it. Database connections
are per thread, so every request also opened a database connection and closed
it again.

:class:`LanedASGIHandler` gives each request a :class:`RequestExecutor`
instead: at its first ``sync_to_async`` the request takes one of ``threads``
long-lived threads (a lane), the one with the fewest sync calls waiting or
running at that moment (then the fewest requests), and all of its
thread-sensitive work runs there until it ends, as Django promises (one thread
per request: its database connection, a transaction inside one sync call).
Requests share lanes: a lane runs one call at a time, so a slow sync call
delays the requests on its lane, never those on the others, and a new request
goes to a lane that is not stuck in it. Each lane keeps its database connection
(``CONN_MAX_AGE``, checked by ``CONN_HEALTH_CHECKS`` before a request uses it).

Django's request signals cost no trip of their own: the database housekeeping
of ``request_started`` (``close_old_connections``, closing a connection that is
too old or broken, and ``reset_queries``) runs on the lane just before the
request's first call there, and a request that makes no sync call takes no lane
at all. The response is closed in the event loop when that cannot block (no
file to close, only Django's own receivers of ``request_finished``). Any other
receiver is sent as Django sends it.

Settings: ``MQB_WEB_SYNC_THREADS`` (the lanes of a web process; 0: Django's
handler, a thread per request, and no persistent connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import itertools
import threading
from collections.abc import Awaitable, Callable, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.core import signals
from django.core.cache import close_caches
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, ASGIRequest, get_script_prefix
from django.core.handlers.base import reset_urlconf
from django.db import close_old_connections, connections, reset_queries
from django.http import HttpRequest
from django.http.response import HttpResponseBase
from django.urls import set_script_prefix

P = ParamSpec("P")
T = TypeVar("T")
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[Mapping[str, Any]], Awaitable[None]]
Receiver = Callable[..., object]

DATABASE_HOUSEKEEPING: frozenset[Receiver] = frozenset({close_old_connections, reset_queries})
"""Django's request receivers that look after the current thread's database connections."""
LOOP_SAFE: frozenset[Receiver] = frozenset({close_caches, reset_urlconf})
"""Django's ``request_finished`` receivers that do no blocking I/O (the cache backends in
use close nothing; the urlconf is context-local)."""


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
    """One request's executor: a lane, taken at the first call and kept to the end.

    ``prologue`` (Django's database housekeeping of ``request_started``) runs on the lane
    just before the request's first call there, in the same turn of the thread.
    """

    def __init__(self, lanes: Lanes) -> None:
        self._lanes = lanes
        self.lane: Lane | None = None
        self.prologue: Callable[[], object] | None = None

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        if self.lane is None:
            self.lane = self._lanes.take()
            prologue, self.prologue = self.prologue, None
            if prologue is not None:
                call = functools.partial(fn, *args, **kwargs)

                def after_prologue() -> T:
                    prologue()
                    return call()

                return self._lanes.submit(self.lane, after_prologue)
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
        token = _executor.set(executor)
        try:
            async with ThreadSensitiveContext(executor=executor):
                await self.handle(scope, receive, send)
        finally:
            _executor.reset(token)
            executor.release()

    async def handle(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        """Django 5.2's ``ASGIHandler.handle`` with the request signals sent by
        :meth:`send_request_started` and :meth:`close_response` instead of a thread hop each."""
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        await self.send_request_started(scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            assert error_response is not None
            await self.send_response(error_response, send)
            await self.close_response(error_response)
            return

        async def process_request(request: Any, send: Send) -> HttpResponseBase:
            response = await self.run_get_response(request)
            with contextlib.suppress(asyncio.CancelledError):  # the client went away
                await self.send_response(response, send)
            return response

        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            assert isinstance(response, HttpResponseBase)
            await self.close_response(response)
        body_file.close()

    async def send_request_started(self, scope: dict[str, Any]) -> None:
        """``request_started``: the database housekeeping becomes the prologue of the
        request's first call on its lane (none when it makes no sync call); other sync
        receivers run in a thread and async ones in the loop, as Django sends them."""
        sender = self.__class__
        sync_receivers, async_receivers = signals.request_started._live_receivers(sender)
        housekeeping = [r for r in sync_receivers if r in DATABASE_HOUSEKEEPING]
        others = [r for r in sync_receivers if r not in DATABASE_HOUSEKEEPING]
        named = {"signal": signals.request_started, "sender": sender, "scope": scope}
        if housekeeping:
            executor = _executor.get()
            executor.prologue = lambda: [receiver(**named) for receiver in housekeeping]
        if others:
            await sync_to_async(lambda: [receiver(**named) for receiver in others])()
        if async_receivers:
            await asyncio.gather(*(receiver(**named) for receiver in async_receivers))

    async def close_response(self, response: HttpResponseBase) -> None:
        """``response.close()`` (and so ``request_finished``) in the loop when it cannot
        block: no file to close, only loop-safe receivers. The database housekeeping
        it sends there finds no connection (the loop thread has none); the lane's
        connection is looked after by the next request's prologue. Otherwise in a thread,
        as Django closes it."""
        sync_receivers, async_receivers = signals.request_finished._live_receivers(self.__class__)
        closers = response._resource_closers  # type: ignore[attr-defined]
        inline = (
            all(_closes_nothing(closer) for closer in closers)
            and not async_receivers
            and all(r in DATABASE_HOUSEKEEPING or r in LOOP_SAFE for r in sync_receivers)
        )
        if inline:
            response.close()
        else:
            await sync_to_async(response.close)()


def _closes_nothing(closer: Callable[[], object]) -> bool:
    """Whether a response's closer is a request's ``close`` with no uploaded file to close
    (Django adds the request's to every response; its body is closed in the loop anyway)."""
    request = getattr(closer, "__self__", None)
    return (
        isinstance(request, HttpRequest)
        and getattr(closer, "__func__", None) in (HttpRequest.close, ASGIRequest.close)
        and not getattr(request, "_files", None)
    )


_executor: contextvars.ContextVar[RequestExecutor] = contextvars.ContextVar("request_executor")
