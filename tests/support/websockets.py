"""Helpers of the websocket tests: connect as a user through the real ASGI app, read events."""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from channels.testing import WebsocketCommunicator

from dashboard.asgi import application
from dashboard.core.clusters import ClusterHealth
from tests.support.metrics import HOST, ORIGIN, session_cookie


async def connect(client, user, url: str, origin=ORIGIN):
    headers = [HOST, origin]
    if user is not None:
        headers.append(await asyncio.to_thread(session_cookie, client, user))
    communicator = WebsocketCommunicator(application, url, headers=headers)
    # A connect runs the login middleware (session, user): under load it can take over
    # the communicator's default 1 s.
    connected, code = await communicator.connect(timeout=10)
    if not connected:
        # End the refused consumer as a server would, instead of leaving it (and its
        # channel-layer read) to the communicator's collection or the loop's close.
        await communicator.send_input({"type": "websocket.disconnect", "code": code or 1006})
        with contextlib.suppress(asyncio.CancelledError):
            await communicator.wait(timeout=0.2)
    return communicator, connected, code


async def receive_until(communicator, done, seconds: float = 15) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    deadline = time.monotonic() + seconds
    while not events or not done(events[-1], events):
        assert time.monotonic() < deadline, f"timed out; last events {events[-3:]}"
        events.append(await communicator.receive_json_from(timeout=5))
    return events


def health_json(slug: str, ok: bool = True) -> dict[str, Any]:
    """A cluster's health as the collector pushes it (the whole ClusterHealthOut)."""
    return ClusterHealth(
        slug=slug,
        kind="rabbitmq",
        name=slug,
        address="127.0.0.1:5672",
        ok=ok,
        code="ok" if ok else "unavailable",
        message="" if ok else "refused",
        checked_at=datetime(2024, 1, 1, tzinfo=UTC),
        elapsed_ms=3,
    ).as_json()


def status_json(slug: str, ok: bool | None) -> dict[str, Any]:
    """A cluster's sampling status as the collector stores and pushes it."""
    return {
        "cluster": slug,
        "kind": "rabbitmq",
        "ok": ok,
        "checked_at": 1700000000.0,
        "sampled_at": None,
        "down_since": None if ok else 1700000000.0,
        "message": "" if ok else "refused",
        "interval": 5.0,
    }
