"""A node of each clustered broker down, then back: the dashboard goes on through the others.

The overview names what needs attention (under-replicated partitions while a
Kafka broker is down, a RabbitMQ node's memory alarm) until it clears.

Real 3-node RabbitMQ and 3-broker Kafka from ``ops/cluster.sh`` (started for
this module only). The dashboard's RabbitMQ config lists every node, node 1
first; node 1 of each broker is the one stopped (RabbitMQ with SIGKILL), so
every AMQP connection and management request has to go to another node. Kafka
gets the whole bootstrap list. Dead letters are captured and requeued while the
RabbitMQ node holding the capture's connection is down: none lost, none
stored twice.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any
from urllib.parse import quote

import aio_pika
import pytest

from dashboard.collector.capture import capture_forever
from dashboard.core.connections import close_all
from dashboard.deadletters import requeue as service
from tests.support import cluster as support
from tests.support.cluster import (
    AMQP_URLS,
    KAFKA_SLUG,
    RABBIT_SLUG,
    VHOST,
    await_until,
    rabbit_node,
)
from tests.support.deadletter_flow import manage, rows_of, stored_count

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.kafka,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]

clustered_brokers = support.clustered_brokers
cluster_session = support.cluster_session

RABBIT_API = f"/api/clusters/{RABBIT_SLUG}/rabbitmq"
KAFKA_API = f"/api/clusters/{KAFKA_SLUG}/kafka"


@pytest.fixture
async def watched(use_clusters, clustered_brokers):
    use_clusters(clustered_brokers.rabbitmq, clustered_brokers.kafka)
    yield clustered_brokers
    await close_all()
    await asyncio.to_thread(support.start_every_node)


async def check(client: Any, slug: str) -> dict[str, Any]:
    answer = await client.post(f"/api/clusters/{slug}/check")
    assert answer.status_code == 200, answer.content
    health: dict[str, Any] = answer.json()
    return health


async def nodes_of(client: Any, slug: str) -> dict[str, bool]:
    """Each node of the cluster's overview and whether it runs; {} while the check fails."""
    health = await check(client, slug)
    if not health["ok"] or health["overview"] is None:
        return {}
    return {n["name"]: n["running"] for n in health["overview"]["nodes"]}


async def attention(client: Any, slug: str) -> str:
    """The card's *Needs attention* entry on the overview page, after a fresh check."""
    await check(client, slug)
    page: str = (await client.get("/")).content.decode()
    card = page.split(f'data-cluster="{slug}"')[1].split("</article>")[0]
    return card.split('data-field="attention"')[1].split("</dd>")[0]


async def queue_detail(client: Any, name: str) -> dict[str, Any]:
    answer = await client.get(f"{RABBIT_API}/queue", {"vhost": VHOST, "name": name})
    assert answer.status_code == 200, answer.content
    detail: dict[str, Any] = answer.json()
    return detail


async def publish(client: Any, queue: str, body: str) -> None:
    sent = await client.post(
        f"{RABBIT_API}/publish",
        {"vhost": VHOST, "exchange": "", "routing_key": queue, "body": body},
        content_type="application/json",
    )
    assert sent.status_code == 200, sent.content
    assert sent.json()["confirmed"]


async def peek(client: Any, queue: str, count: int) -> list[str]:
    answer = await client.post(
        f"{RABBIT_API}/queue/peek?vhost={VHOST}&name={quote(queue, safe='')}",
        {"count": count, "confirm": True},
        content_type="application/json",
    )
    assert answer.status_code == 200, answer.content
    return [m["body"] for m in answer.json()["messages"]]


async def produce(client: Any, topic: str, value: str) -> None:
    answer = await client.post(
        f"{KAFKA_API}/topics/{topic}/messages", {"value": value}, content_type="application/json"
    )
    assert answer.status_code == 201, answer.content


async def kafka_values(client: Any, topic: str) -> list[str]:
    answer = await client.get(
        f"{KAFKA_API}/topics/{topic}/messages", {"start": "oldest", "limit": 500}
    )
    assert answer.status_code == 200, answer.content
    return sorted(r["value"]["data"] for r in answer.json()["records"])


async def partitions(client: Any, topic: str) -> list[dict[str, Any]]:
    answer = await client.get(f"{KAFKA_API}/topics/{topic}")
    assert answer.status_code == 200, answer.content
    return list(answer.json()["partitions"])


async def drain(queue: str, url: str) -> list[str]:
    """Consume every message of ``queue`` over AMQP on the node at ``url`` (then ack)."""
    connection = await aio_pika.connect(url, login="guest", password="guest")
    bodies: list[str] = []
    async with connection:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        while True:
            message = await declared.get(no_ack=False, fail=False, timeout=10)
            if message is None:
                break
            bodies.append(message.body.decode())
            await message.ack()
    return sorted(bodies)


async def send_both(client: Any, queue: str, topic: str, bodies: list[str]) -> None:
    for body in bodies:
        await publish(client, queue, body)
        await produce(client, topic, body)


async def test_one_node_of_each_down_then_back(async_client, operator, watched):
    client = async_client
    await client.aforce_login(operator)
    queue = f"cl-{uuid.uuid4().hex[:8]}"
    topic = f"cl-{uuid.uuid4().hex[:8]}"
    # Declared without a type in the quorum vhost, on node 1 (its leader starts there).
    await asyncio.to_thread(
        support.management,
        f"/api/queues/{VHOST}/{queue}",
        "PUT",
        json={"durable": True, "arguments": {}},
    )
    await asyncio.to_thread(support.create_topic, topic)
    before = [f"before-{i}" for i in range(20)]
    await send_both(client, queue, topic, before)

    async def counted(expected: int) -> dict[str, Any] | None:
        detail = await queue_detail(client, queue)
        return detail if detail["messages"] == expected else None

    detail = await await_until(lambda: counted(20), "the queue's count")
    assert detail["type"] == "quorum" and detail["node"] == rabbit_node(1)
    assert await kafka_values(client, topic) == sorted(before)

    await asyncio.to_thread(support.stop_node, "rabbitmq", 1, kill=True)
    await asyncio.to_thread(support.stop_node, "kafka", 1, kill=True)

    # The health check reaches both clusters through the other nodes and says which is down.
    async def down(slug: str, node: str) -> dict[str, bool] | None:
        nodes = await nodes_of(client, slug)
        return nodes if nodes.get(node) is False else None

    rabbit_nodes = await await_until(lambda: down(RABBIT_SLUG, rabbit_node(1)), "node 1 down")
    assert rabbit_nodes == {rabbit_node(1): False, rabbit_node(2): True, rabbit_node(3): True}
    kafka_nodes = await await_until(lambda: down(KAFKA_SLUG, "1"), "broker 1 down")
    assert kafka_nodes == {"1": False, "2": True, "3": True}
    page = (await client.get("/")).content.decode()
    for slug in (RABBIT_SLUG, KAFKA_SLUG):
        card = page.split(f'data-cluster="{slug}"')[1].split("</article>")[0]
        assert "[down]" in card

    async def all_under_replicated() -> list[dict[str, Any]] | None:
        found = await partitions(client, topic)
        return found if all(p["under_replicated"] for p in found) else None

    shrunk = await await_until(all_under_replicated, "every partition under-replicated")
    assert all(1 not in p["isr"] and p["leader"] in (2, 3) for p in shrunk)

    # The overview says so in words, with links to the topics holding them.
    async def replication_noted() -> str | None:
        entry = await attention(client, KAFKA_SLUG)
        return entry if "under-replicated partition" in entry else None

    entry = await await_until(replication_noted, "under-replicated partitions on the overview")
    assert f'<a href="/clusters/{KAFKA_SLUG}/kafka/topics/' in entry
    assert "offline partition" not in entry

    # Browsing, publishing and reading go on; the quorum queue has a new leader.
    during = [f"during-{i}" for i in range(10)]
    await send_both(client, queue, topic, during)
    moved = await await_until(lambda: counted(30), "the queue's count with node 1 down")
    assert moved["node"] in {rabbit_node(2), rabbit_node(3)}
    assert sorted(await peek(client, queue, 30)) == sorted(before + during)
    assert await kafka_values(client, topic) == sorted(before + during)

    await asyncio.to_thread(support.start_node, "rabbitmq", 1)
    await asyncio.to_thread(support.start_node, "kafka", 1)

    async def all_running(slug: str, count: int) -> bool:
        nodes = await nodes_of(client, slug)
        return len(nodes) == count and all(nodes.values())

    await await_until(lambda: all_running(RABBIT_SLUG, 3), "every RabbitMQ node running")
    await await_until(lambda: all_running(KAFKA_SLUG, 3), "every Kafka broker running")

    async def in_sync() -> bool:
        return not any(p["under_replicated"] for p in await partitions(client, topic))

    await await_until(in_sync, "every partition in sync again")

    async def nothing_noted() -> bool:
        return ">nothing" in await attention(client, KAFKA_SLUG)

    await await_until(nothing_noted, "nothing needing attention once the broker is back")
    after = ["after-0", "after-1"]
    await send_both(client, queue, topic, after)
    assert await kafka_values(client, topic) == sorted(before + during + after)
    # Nothing lost on the queue either: drained on the node that was down.
    assert await drain(queue, AMQP_URLS[0]) == sorted(before + during + after)


async def test_a_resource_alarm_is_on_the_overview_until_it_clears(async_client, operator, watched):
    await async_client.aforce_login(operator)
    node = rabbit_node(2)
    try:
        # A memory watermark far below what a node uses: node 2 raises its memory alarm.
        await asyncio.to_thread(support.rabbitmqctl, 2, "set_vm_memory_high_watermark", "0.0001")

        async def alarmed() -> str | None:
            entry = await attention(async_client, RABBIT_SLUG)
            return entry if f"memory alarm on {node}" in entry else None

        entry = await await_until(alarmed, "the memory alarm on the overview")
        assert f'<a href="http://127.0.0.1:15681/#/nodes/{quote(node, safe="")}">node</a>' in entry
        assert "mqb-c1@localhost" not in entry and "mqb-c3@localhost" not in entry
        api = (await async_client.get("/api/clusters/health")).json()
        (card,) = [c for c in api["clusters"] if c["slug"] == RABBIT_SLUG]
        by_node = {n["name"]: n["alarms"] for n in card["overview"]["nodes"]}
        assert by_node[node] == ["memory"]
    finally:
        await asyncio.to_thread(support.rabbitmqctl, 2, "set_vm_memory_high_watermark", "0.4")

    async def cleared() -> bool:
        return ">nothing" in await attention(async_client, RABBIT_SLUG)

    await await_until(cleared, "the alarm gone from the overview")


async def test_capture_and_requeue_lose_nothing_while_a_node_is_down(operator, watched):
    base = f"cl-{uuid.uuid4().hex[:8]}"
    # Declared on node 1: the quorum queues' leaders start there.
    events, work, dlq = await support.dead_letter_topology(AMQP_URLS[0], base)
    target = await manage(RABBIT_SLUG, VHOST, dlq)
    stop = asyncio.Event()
    capture = asyncio.create_task(capture_forever(target, stop))
    first = [f"{base}-{i}" for i in range(10)]
    second = [f"{base}-{i}" for i in range(10, 20)]
    try:
        await support.reject_through(AMQP_URLS[1], events, work, first)
        await await_until(lambda: counted(dlq, 10), "the first letters captured")
        # Stop the node the capture is connected to (and, if it is node 1, the leaders).
        name = f"mqboard capture {RABBIT_SLUG}"
        node = await await_until(
            lambda: asyncio.to_thread(support.node_of_connection, name), "the capture connection"
        )
        await asyncio.to_thread(support.stop_node, "rabbitmq", node, kill=True)
        alive = AMQP_URLS[node % 3]
        await support.reject_through(alive, events, work, second)
        await await_until(lambda: counted(dlq, 20), "every letter captured through another node")
        letters = await rows_of(dlq)
        assert sorted(r.message_id for r in letters) == sorted(first + second)
        for letter in letters:
            result = await service.do_requeue_dead_letter(letter.pk, user=operator)
            assert result.sent and result.status == "requeued"
        await asyncio.to_thread(support.start_node, "rabbitmq", node)
    finally:
        stop.set()
        await asyncio.wait_for(capture, 30)
    # Every letter once in its origin queue, none left in the DLQ, none stored twice.
    assert await support.message_ids(AMQP_URLS[0], work) == sorted(first + second)
    assert await support.message_ids(AMQP_URLS[0], dlq) == []
    after = await rows_of(dlq)
    assert len(after) == 20 and {r.status for r in after} == {"requeued"}


async def counted(dlq: str, expected: int) -> bool:
    return await stored_count(dlq) == expected
