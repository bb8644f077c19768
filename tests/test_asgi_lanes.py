"""A web process's sync work on a few long-lived threads (``dashboard.core.asgi_handler``).

Requests go through ``LanedASGIHandler`` itself, over ASGI as Daphne calls it, to
views of this module. Counts and identities, not timings: a request's sync calls
run on one thread of the pool, a database connection is reused by the requests
that follow, and a sync view that does not return holds up no request on another
lane.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import threading
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.decorators import login_not_required
from django.core.handlers.asgi import ASGIHandler
from django.core.signals import request_finished, request_started
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from dashboard.core.asgi_handler import LanedASGIHandler, Lanes
from tests.support.threads import recording_hops

pytestmark = pytest.mark.django_db(transaction=True)

WAIT = 30.0  # seconds a test waits for something that happens at once, before failing
seen_connections: list[Any] = []
slow_entered = threading.Event()
slow_release = threading.Event()


@login_not_required
def connection_view(request: HttpRequest) -> HttpResponse:
    """Reads a row and keeps the driver's connection object it used."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    seen_connections.append(connection.connection)
    return JsonResponse({"thread": threading.current_thread().name})


@login_not_required
async def threads_view(request: HttpRequest) -> HttpResponse:
    """Three sync calls of one async view: the threads they ran on."""
    names = [await sync_to_async(lambda: threading.current_thread().name)() for _ in range(3)]
    return JsonResponse({"threads": names})


@login_not_required
async def no_sync_view(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


@login_not_required
def slow_view(request: HttpRequest) -> HttpResponse:
    """Holds its lane until the test releases it."""
    slow_entered.set()
    released = slow_release.wait(WAIT)
    return JsonResponse({"released": released})


urlpatterns = [
    path("connection/", connection_view),
    path("threads/", threads_view),
    path("slow/", slow_view),
    path("no-sync/", no_sync_view),
]


@pytest.fixture
def make_handler(settings: Any) -> Iterator[Callable[[int], LanedASGIHandler]]:
    """``make_handler(threads)``: a handler serving this module's views."""
    settings.ROOT_URLCONF = __name__
    seen_connections.clear()
    slow_entered.clear()
    slow_release.clear()
    made: list[LanedASGIHandler] = []

    def make(threads: int) -> LanedASGIHandler:
        made.append(LanedASGIHandler(threads))
        return made[-1]

    yield make
    slow_release.set()
    for handler in made:
        handler.lanes.close()  # each lane's connection, before the test database goes


async def get(handler: LanedASGIHandler, url: str) -> tuple[int, bytes]:
    """One GET over ASGI, as Daphne sends it: the status and the body."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url,
        "raw_path": url.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    requested = False
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(dict(message))

    await handler(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


async def test_the_requests_that_follow_reuse_the_database_connection(make_handler):
    handler = make_handler(1)
    for _ in range(3):
        assert (await get(handler, "/connection/"))[0] == 200
    assert len(seen_connections) == 3
    assert seen_connections[0] is seen_connections[1] is seen_connections[2]


async def test_each_lane_keeps_one_connection(make_handler):
    handler = make_handler(2)
    for _ in range(6):
        assert (await get(handler, "/connection/"))[0] == 200
    assert len(seen_connections) == 6
    assert len({id(c) for c in seen_connections}) <= 2


async def test_a_requests_sync_calls_run_on_one_lane(make_handler):
    status, body = await get(make_handler(2), "/threads/")
    assert status == 200
    names = json.loads(body)["threads"]
    assert len(set(names)) == 1
    assert names[0].startswith("django-lane-")


async def test_a_slow_sync_view_holds_up_no_request_on_another_lane(make_handler):
    handler = make_handler(2)
    slow = asyncio.create_task(get(handler, "/slow/"))
    assert await sync_to_async(slow_entered.wait, thread_sensitive=False)(WAIT)
    # The slow request holds one lane; the next request takes the other.
    status, _body = await asyncio.wait_for(get(handler, "/connection/"), WAIT)
    assert status == 200
    assert not slow.done()
    slow_release.set()
    status, body = await asyncio.wait_for(slow, WAIT)
    assert (status, body) == (200, b'{"released": true}')


async def test_a_request_without_sync_work_takes_no_lane_and_crosses_no_thread(make_handler):
    handler = make_handler(2)
    taken: list[object] = []
    original = handler.lanes.take

    def counting_take() -> Any:
        taken.append(original())
        return taken[-1]

    handler.lanes.take = counting_take
    with recording_hops() as hops:
        assert (await get(handler, "/no-sync/")) == (200, b'{"ok": true}')
    assert hops == [] and taken == []


async def test_a_request_calls_on_its_lane_once_per_sync_call(make_handler):
    handler = make_handler(2)
    with recording_hops() as hops:
        assert (await get(handler, "/connection/"))[0] == 200
    # The view itself: the signals' database housekeeping went with it, the close inline.
    assert hops == ["connection_view"]


async def test_a_connection_too_old_is_replaced_before_the_next_request_uses_it(make_handler):
    handler = make_handler(1)
    assert (await get(handler, "/connection/"))[0] == 200

    def expire() -> None:
        connection.close_at = 0  # older than CONN_MAX_AGE

    await sync_to_async(handler.lanes.run_on_each, thread_sensitive=False)(expire)
    assert (await get(handler, "/connection/"))[0] == 200
    assert (await get(handler, "/connection/"))[0] == 200
    first, second, third = seen_connections
    assert second is not first and third is second


async def test_other_request_receivers_are_still_sent(make_handler):
    handler = make_handler(2)
    calls: list[str] = []

    def sync_receiver(sender: object, **kwargs: object) -> None:
        calls.append(f"sync {threading.current_thread().name.split('_')[0]}")

    async def async_receiver(sender: object, **kwargs: object) -> None:
        calls.append("async")

    for signal in (request_started, request_finished):
        signal.connect(sync_receiver)
        signal.connect(async_receiver)
    try:
        assert (await get(handler, "/no-sync/"))[0] == 200
    finally:
        for signal in (request_started, request_finished):
            signal.disconnect(sync_receiver)
            signal.disconnect(async_receiver)
    # Each signal once to each: the sync receivers on the request's lane, as Django would.
    assert sorted(calls) == ["async", "async", "sync django-lane-0", "sync django-lane-0"] or (
        sorted(calls) == ["async", "async", "sync django-lane-1", "sync django-lane-1"]
    )


def test_the_handle_it_follows_is_djangos_own():
    """LanedASGIHandler.handle is Django 5.2's with the signals sent its way: a new
    Django whose handle changed needs it reviewed."""
    source = inspect.getsource(ASGIHandler.handle).encode()
    assert hashlib.sha256(source).hexdigest() == (
        "98faeb5bef800331e6a8002fbc96b30e4122a23438ae45a047190a531ea11323"
    )


def test_a_request_takes_the_lane_serving_the_fewest_requests():
    lanes = Lanes(3)
    try:
        first, second, third = lanes.take(), lanes.take(), lanes.take()
        assert {first, second, third} == set(lanes.lanes)
        lanes.give_back(second)
        assert lanes.take() is second  # the only lane serving none
        fourth = lanes.take()
        assert fourth.requests == 2
    finally:
        lanes.close()


def test_a_request_avoids_a_lane_busy_with_a_call():
    lanes = Lanes(2)
    started, release = threading.Event(), threading.Event()
    try:

        def slow_call() -> None:
            started.set()
            release.wait(WAIT)

        busy = lanes.take()
        lanes.submit(busy, slow_call)
        assert started.wait(WAIT)
        lanes.give_back(busy)  # its request is gone; its call still runs
        other = lanes.take()
        assert other is not busy
        assert lanes.take() is not busy  # the idle lane again, though it serves a request
    finally:
        release.set()
        lanes.close()


def test_a_process_has_at_least_one_lane():
    with pytest.raises(ValueError, match="at least one"):
        Lanes(0)
