"""Kafka live tail on the real broker: reads from the end, never commits, stops with its viewers."""

from __future__ import annotations

import asyncio
import time
from urllib.parse import urlencode

import pytest

from brokers.base import NotFound
from brokers.base.tail import TailBatch
from brokers.kafka import KafkaBroker
from brokers.kafka.tail import open_kafka_tap
from dashboard.core.connections import close_all
from dashboard.tail.hub import running_tails
from tests.support.metrics import create_topic, delete_topics, kafka_admin, produce
from tests.support.websockets import connect, receive_until

pytestmark = [pytest.mark.kafka, pytest.mark.redis]


@pytest.fixture
def topic(unique_name: str):
    create_topic(unique_name, partitions=3)
    yield unique_name
    delete_topics(unique_name)


@pytest.fixture
async def closing():
    yield
    await close_all()


@pytest.fixture
async def broker(kafka_config):
    adapter = KafkaBroker(kafka_config)
    await adapter.connect()
    yield adapter
    await adapter.close()


async def test_it_reads_only_new_records_at_the_rate_and_never_commits(broker, topic):
    await asyncio.to_thread(produce, topic, 5)  # before the tail: never shown
    tap = await open_kafka_tap(broker, topic, rate=5)
    got: list[TailBatch] = []

    async def read() -> None:
        async for batch in tap.batches():
            got.append(batch)

    reader = asyncio.create_task(read())
    try:
        assert tap.partitions == (0, 1, 2)
        await asyncio.sleep(0.5)  # the consumer resolves its end offsets
        await asyncio.to_thread(produce, topic, 200, partition=1)
        deadline = time.monotonic() + 15
        while sum(len(b.messages) + b.skipped for b in got) < 200:
            assert time.monotonic() < deadline, "the tail neither showed nor skipped everything"
            await asyncio.sleep(0.1)
        shown = [m for b in got for m in b.messages]
        assert sum(len(b.messages) + b.skipped for b in got) == 200, "old records were not read"
        assert 1 <= len(shown) <= 15
        assert shown[0].partition == 1 and shown[0].offset is not None and shown[0].offset >= 0
        assert shown[0].body.text.startswith("record ")
    finally:
        reader.cancel()
        await tap.close()
    groups = kafka_admin().list_consumer_groups(request_timeout=10).result(timeout=15)
    assert tap.group_id not in {g.group_id for g in groups.valid}, "never joined, never committed"


async def test_it_says_when_the_topic_does_not_exist_and_creates_nothing(broker, unique_name):
    with pytest.raises(NotFound, match="does not exist"):
        await open_kafka_tap(broker, unique_name)
    topics = kafka_admin().list_topics(timeout=10).topics
    assert unique_name not in topics


def path(**params: str) -> str:
    return "/ws/tail/topic/?" + urlencode(params)


@pytest.mark.django_db(transaction=True)
async def test_a_topic_socket_shows_records_and_closes_its_consumer_when_left(
    client, viewer, settings, use_clusters, topic, closing
):
    settings.MQB_TAIL_RATE = 3
    ws, connected, _ = await connect(client, viewer, path(cluster="test-kafka", name=topic))
    assert connected
    await ws.receive_json_from(timeout=5)
    await ws.send_json_to({"action": "start"})
    await receive_until(ws, lambda e, _: e.get("state") == "running")
    [tail] = [t for k, t in running_tails().items() if k == ("topic", "test-kafka", topic)]
    tap = tail.source
    await asyncio.sleep(0.5)
    await asyncio.to_thread(produce, topic, 50)
    events = await receive_until(ws, lambda e, _: e.get("skipped", 0) + e.get("shown", 0) >= 50)
    messages = [e for e in events if e["type"] == "tail.message"]
    assert 1 <= len(messages) <= 9 and events[-1]["skipped"] == 50 - events[-1]["shown"]
    assert messages[0]["message"]["partition"] == 0
    await ws.disconnect()
    assert not [k for k in running_tails() if k[-1] == topic]
    assert tap._consumer is None, "the consumer was closed"  # type: ignore[union-attr]


@pytest.mark.django_db(transaction=True)
async def test_it_refuses_anonymous_topic_sockets(use_clusters, closing):
    _, connected, code = await connect(None, None, path(cluster="test-kafka", name="t"))
    assert not connected and code == 4401
