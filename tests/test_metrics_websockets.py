"""Metrics websockets through the real ASGI app and Redis: auth, Origin, watch marks, relays."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from channels import consumer as channels_consumer
from channels.layers import get_channel_layer

from brokers.base.metrics import queue_entity
from dashboard.core.channel_groups import cluster_group, consumer_group_group, queue_group
from dashboard.core.websockets import UNAUTHENTICATED
from dashboard.metrics.snapshot import write_status
from dashboard.metrics.watchers import get_watched
from dashboard.metrics.websockets import BAD_REQUEST, NOT_FOUND
from tests.support.websockets import connect, health_json, status_json

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def path(kind: str, **params: str) -> str:
    return f"/ws/metrics/{kind}/?{urlencode(params)}"


async def test_it_refuses_sockets_without_a_session(redis_url, use_clusters):
    _, connected, code = await connect(None, None, path("cluster", cluster="test-rabbitmq"))
    assert not connected and code == UNAUTHENTICATED


async def test_it_refuses_a_foreign_origin(client, viewer, redis_url, use_clusters):
    url = path("cluster", cluster="test-rabbitmq")
    _, connected, _ = await connect(client, viewer, url, origin=(b"origin", b"http://evil.example"))
    assert not connected


async def test_it_refuses_unknown_clusters_and_missing_names(
    client, viewer, redis_url, use_clusters
):
    _, connected, code = await connect(
        client, viewer, path("queue", cluster="nope", vhost="/", name="q")
    )
    assert (connected, code) == (False, NOT_FOUND)
    _, connected, code = await connect(
        client, viewer, path("queue", cluster="test-rabbitmq", name="q")
    )
    assert (connected, code) == (False, BAD_REQUEST)
    _, connected, code = await connect(
        client, viewer, path("topic", cluster="test-rabbitmq", name="t")
    )
    assert (connected, code) == (False, BAD_REQUEST), "a RabbitMQ cluster has no topics"


async def test_a_queue_socket_is_watched_while_open_and_relays_points(
    client, viewer, redis_url, use_clusters
):
    vhost, name = "odd/vhost", "orders & <b>co</b>"
    url = path("queue", cluster="test-rabbitmq", vhost=vhost, name=name)
    communicator, connected, _ = await connect(client, viewer, url)
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "metrics.hello"
    assert hello["entity"] == queue_entity(vhost, name)
    assert ("queue", queue_entity(vhost, name)) in await get_watched("test-rabbitmq")

    point = {
        "type": "metrics.point",
        "cluster": "test-rabbitmq",
        "entity_type": "queue",
        "entity": queue_entity(vhost, name),
        "time": 1.0,
        "step": 1.0,
        "values": {"depth": 3},
        "time_to_drain": None,
    }
    await get_channel_layer().group_send(queue_group("test-rabbitmq", vhost, name), point)
    assert await communicator.receive_json_from(timeout=5) == point
    await communicator.disconnect()
    assert ("queue", queue_entity(vhost, name)) not in await get_watched("test-rabbitmq")


async def test_one_viewer_leaving_keeps_the_other_watching(client, viewer, redis_url, use_clusters):
    url = path("group", cluster="test-kafka", name="billing/v2")
    first, _, _ = await connect(client, viewer, url)
    second, _, _ = await connect(client, viewer, url)
    await first.receive_json_from(timeout=5)
    await second.receive_json_from(timeout=5)
    await first.disconnect()
    assert ("group", "billing/v2") in await get_watched("test-kafka")
    await get_channel_layer().group_send(
        consumer_group_group("test-kafka", "billing/v2"),
        {**status_json("test-kafka", ok=False), "type": "metrics.status"},
    )
    assert (await second.receive_json_from(timeout=5))["ok"] is False
    await second.disconnect()


async def test_the_cluster_socket_says_unavailable_since_from_the_start(
    client, viewer, redis_url, use_clusters
):
    status = {
        "cluster": "test-rabbitmq",
        "ok": False,
        "down_since": 1700000000.0,
        "message": "refused",
    }
    await write_status("test-rabbitmq", status)
    communicator, connected, _ = await connect(
        client, viewer, path("cluster", cluster="test-rabbitmq")
    )
    assert connected
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["status"] == status
    health = health_json("test-rabbitmq")
    await get_channel_layer().group_send(
        cluster_group("test-rabbitmq"), {"type": "cluster.health", "health": health}
    )
    assert await communicator.receive_json_from(timeout=5) == {
        "type": "cluster.health",
        "health": health,
    }
    await communicator.disconnect()


async def test_points_are_relayed_without_a_database_trip_and_connects_keep_theirs(
    client, viewer, redis_url, use_clusters, monkeypatch
):
    """channels' per-message ``close_old_connections`` (a sync-thread hop) is skipped for
    the collector's events, which touch no database, and kept for everything else."""
    calls: list[str] = []
    real = channels_consumer.aclose_old_connections

    async def counted() -> None:
        calls.append("housekeeping")
        await real()

    monkeypatch.setattr(channels_consumer, "aclose_old_connections", counted)
    url = path("cluster", cluster="test-rabbitmq")
    communicator, connected, _ = await connect(client, viewer, url)
    assert connected and calls == ["housekeeping"]  # websocket.connect
    await communicator.receive_json_from(timeout=5)  # metrics.hello
    point = {
        "type": "metrics.point",
        "cluster": "test-rabbitmq",
        "entity_type": "cluster",
        "entity": "",
        "time": 1.0,
        "step": 1.0,
        "values": {"depth": 3},
        "time_to_drain": None,
    }
    for _ in range(3):
        await get_channel_layer().group_send(cluster_group("test-rabbitmq"), point)
        assert await communicator.receive_json_from(timeout=5) == point
    assert calls == ["housekeeping"]
    await communicator.disconnect()
    assert calls == ["housekeeping", "housekeeping"]  # websocket.disconnect
