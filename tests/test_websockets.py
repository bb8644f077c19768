"""Websockets through the real ASGI application and the real Redis channel layer."""

from __future__ import annotations

import asyncio
import subprocess
from typing import Any

import pytest
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from dashboard.asgi import application
from dashboard.core.websockets import UNAUTHENTICATED
from dashboard.overview.websockets import OVERVIEW_GROUP
from tests.conftest import PYTHON, ROOT
from tests.support.websockets import health_json

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]

ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")  # the Origin must be the site the socket was opened on


def session_cookie(client, user) -> tuple[bytes, bytes]:
    client.force_login(user)
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode())


async def test_it_refuses_a_connection_without_a_session(redis_url):
    communicator = WebsocketCommunicator(application, "/ws/overview/", headers=[HOST, ORIGIN])
    connected, code = await communicator.connect(timeout=10)
    assert not connected and code == UNAUTHENTICATED


async def test_it_refuses_a_foreign_origin(client, viewer, redis_url):
    cookie = await asyncio.to_thread(session_cookie, client, viewer)
    communicator = WebsocketCommunicator(
        application, "/ws/overview/", headers=[HOST, (b"origin", b"http://evil.example"), cookie]
    )
    connected, _ = await communicator.connect(timeout=10)
    assert not connected


async def test_a_logged_in_user_receives_pushed_health(client, viewer, redis_url):
    cookie = await asyncio.to_thread(session_cookie, client, viewer)
    communicator = WebsocketCommunicator(
        application, "/ws/overview/", headers=[HOST, ORIGIN, cookie]
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    health = health_json("x")
    await get_channel_layer().group_send(
        OVERVIEW_GROUP, {"type": "cluster.health", "health": health}
    )
    message = await communicator.receive_json_from(timeout=5)
    assert message == {"type": "cluster.health", "health": health}
    await communicator.disconnect()


@pytest.mark.rabbitmq
@pytest.mark.kafka
async def test_the_collector_process_pushes_both_clusters(client, viewer, served_db, redis_url):
    cookie = await asyncio.to_thread(session_cookie, client, viewer)
    communicator = WebsocketCommunicator(
        application, "/ws/overview/", headers=[HOST, ORIGIN, cookie]
    )
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    result = await asyncio.to_thread(
        subprocess.run,
        [PYTHON, "manage.py", "collect", "--once"],
        cwd=ROOT,
        env=served_db,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    seen: dict[str, dict[str, Any]] = {}
    for _ in range(2):
        try:
            message = await communicator.receive_json_from(timeout=30)
        except TimeoutError:
            pytest.fail(f"no push after {seen.keys()}; collector said: {result.stderr[-3000:]!r}")
        seen[message["health"]["kind"]] = message["health"]
    assert seen["rabbitmq"]["ok"] and seen["kafka"]["ok"]
    assert seen["kafka"]["overview"]["cluster_name"]
    await communicator.disconnect()
