"""Names that are relative path segments never reach another management API endpoint.

Both httpx and RabbitMQ 3.10 resolve ``.`` and ``..`` segments, even when
percent-encoded (``/api/queues/%2E%2E/definitions`` answers the definitions),
so such names are refused with a 400 that names the field, before any request.
Every request the adapter makes is recorded with an httpx event hook.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiormq
import pytest
from yarl import URL

from brokers.base.validate import InvalidValue
from brokers.rabbitmq import RabbitMQBroker
from brokers.rabbitmq.connection import accept_every_entity_name
from dashboard.core.connections import close_all, get_broker
from tests.support.rabbitmq import delete_queue, unique

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]

API = "/api/clusters/test-rabbitmq/rabbitmq"


@pytest.fixture
async def sent(use_clusters, rabbitmq_config) -> AsyncIterator[list[str]]:
    """The paths the dashboard's own adapter requests from the management API."""
    use_clusters(rabbitmq_config)
    broker = await get_broker(rabbitmq_config.slug)
    assert isinstance(broker, RabbitMQBroker)
    paths: list[str] = []

    async def record(request: Any) -> None:
        paths.append(request.url.raw_path.decode())

    broker._open_http().event_hooks["request"].append(record)
    yield paths
    await close_all()


async def declare_over_amqp(vhost: str, *names: str) -> None:
    """Queues the management API cannot create (it reads ``%2E%2E`` as ``..`` too)."""
    accept_every_entity_name()
    connection = aiormq.Connection(URL("amqp://guest:guest@127.0.0.1:5672/"))
    connection.vhost = vhost
    await connection.connect()
    try:
        channel = await connection.channel()
        for name in names:
            await channel.queue_declare(name, auto_delete=False)
    finally:
        await connection.close()


@pytest.mark.parametrize(
    ("endpoint", "params", "field"),
    [
        ("queue", {"vhost": "..", "name": "definitions"}, "vhost"),
        ("queue", {"vhost": ".", "name": "definitions"}, "vhost"),
        ("exchange", {"vhost": "..", "name": "definitions"}, "vhost"),
        ("queues", {"vhost": ".."}, "vhost"),
    ],
)
async def test_it_refuses_dot_segment_vhosts_before_any_request(
    async_client, viewer, sent, endpoint, params, field
):
    await async_client.aforce_login(viewer)
    response = await async_client.get(f"{API}/{endpoint}", params)
    assert response.status_code == 400, response.content[:300]
    body = response.json()
    assert body["code"] == "invalid" and body["field"] == field
    assert "relative path" in body["error"]
    assert not any("definitions" in p for p in sent)
    assert not any(p.rstrip("/") in ("/api/queues", "/api/exchanges") for p in sent)


async def test_a_real_queue_named_dot_dot_is_refused_clearly_and_dots_elsewhere_work(
    async_client, viewer, sent, rabbitmq_vhost
):
    names = ["..", ".", f"...{unique()}", f"..{unique()}"]
    await declare_over_amqp(rabbitmq_vhost, *names)
    try:
        await async_client.aforce_login(viewer)
        for name in ("..", "."):
            response = await async_client.get(
                f"{API}/queue", {"vhost": rabbitmq_vhost, "name": name}
            )
            assert response.status_code == 400
            assert response.json()["field"] == "name"
        assert sent == []  # nothing reached the management API, least of all a listing
        for name in names[2:]:
            response = await async_client.get(
                f"{API}/queue", {"vhost": rabbitmq_vhost, "name": name}
            )
            assert response.status_code == 200, response.content[:300]
            assert response.json()["name"] == name
    finally:
        for name in names[2:]:
            delete_queue(rabbitmq_vhost, name)
        for name in names[:2]:
            await delete_over_amqp(rabbitmq_vhost, name)


async def delete_over_amqp(vhost: str, name: str) -> None:
    connection = aiormq.Connection(URL("amqp://guest:guest@127.0.0.1:5672/"))
    connection.vhost = vhost
    await connection.connect()
    try:
        channel = await connection.channel()
        await channel.queue_delete(name)
    finally:
        await connection.close()


@pytest.mark.parametrize(
    "path",
    ["/api/queues/%2E%2E/definitions", "/api/queues/../definitions", "/api/queues/v/%2e?x=1"],
)
async def test_the_client_refuses_a_dot_segment_path_built_anywhere(rabbitmq_config, path):
    broker = RabbitMQBroker(rabbitmq_config)
    try:
        with pytest.raises(InvalidValue):
            await broker.management_get(path)
        assert broker._http is None  # refused before a client was even opened
    finally:
        await broker.close_http()
