"""The queue and topic browsers, for every kind that offers one, on the real broker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from brokers.base import Broker, NotFound
from brokers.base.browse import QueueBrowser, TopicBrowser
from brokers.base.contract import BrokerKind
from brokers.rabbitmq.models import OutgoingMessage, QueueQuery
from tests.support.sandbox import Sandbox

T = TypeVar("T")


async def eventually(check: Callable[[], Awaitable[T | None]], within: float = 15.0) -> T:
    """Management statistics lag the broker by seconds: poll, never sleep blindly."""
    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result is not None or time.monotonic() > deadline:
            assert result is not None, "not seen in time"
            return result
        await asyncio.sleep(0.3)


@pytest.mark.capability("queues")
class TestQueueBrowser:
    @pytest.fixture
    def queues(self, kind: BrokerKind, request: pytest.FixtureRequest) -> QueueBrowser:
        assert kind.queues is not None
        broker: Broker = request.getfixturevalue("broker")
        return kind.queues(broker)

    async def test_a_queue_made_by_the_test_is_listed_and_described(
        self, queues: QueueBrowser, sandbox: Sandbox
    ):
        made = await sandbox.make()
        page = await queues.queue_page(QueueQuery(vhost=made.vhost, name=made.name))
        assert [(r.vhost, r.name) for r in page.items] == [(made.vhost, made.name)]
        assert made.vhost in {v.name for v in await queues.vhosts()}
        detail = await queues.queue_detail(made.vhost, made.name)
        assert (detail.vhost, detail.name) == (made.vhost, made.name)
        with pytest.raises(NotFound):
            await queues.queue_detail(made.vhost, f"{made.name}-missing")

    async def test_its_exchanges_are_listed(self, queues: QueueBrowser, sandbox: Sandbox):
        made = await sandbox.make()
        page = await queues.exchange_page(made.vhost, name="amq.topic")
        assert "amq.topic" in {e.name for e in page.items}
        detail = await queues.exchange_detail(made.vhost, "amq.topic")
        assert (detail.exchange.name, detail.exchange.type) == ("amq.topic", "topic")

    async def test_a_published_message_is_peeked_back(self, queues: QueueBrowser, sandbox: Sandbox):
        made = await sandbox.make()
        sent = await queues.publish(
            made.vhost, OutgoingMessage(exchange="", routing_key=made.name, body=b'{"n": 1}')
        )
        assert sent.confirmed
        plan = await queues.peek_plan(made.vhost, made.name)
        assert plan.queue == made.name
        peeked = await queues.peek(made.vhost, made.name, 5)
        assert [m.body for m in peeked.messages] == [b'{"n": 1}']

    async def test_purge_removes_every_ready_message(self, queues: QueueBrowser, sandbox: Sandbox):
        made = await sandbox.make()
        await sandbox.send(made, b"a", b"b", b"c")
        result = await queues.purge(made.vhost, made.name)
        assert result.purged == 3

        async def empty() -> bool | None:
            row = await queues.queue_summary(made.vhost, made.name)
            return True if row.messages == 0 else None

        await eventually(empty)


@pytest.mark.capability("topics")
class TestTopicBrowser:
    @pytest.fixture
    def topics(self, kind: BrokerKind, request: pytest.FixtureRequest) -> TopicBrowser:
        assert kind.topics is not None
        broker: Broker = request.getfixturevalue("broker")
        return kind.topics(broker)

    async def test_a_topic_made_by_the_test_is_listed_with_its_partitions(
        self, topics: TopicBrowser, sandbox: Sandbox
    ):
        made = await sandbox.make()
        page = await topics.topic_page(name_filter=made.name)
        assert [t.name for t in page.topics] == [made.name]
        detail = await topics.topic_detail(made.name)
        assert [p.partition for p in detail.partitions] == [0]
        assert (await topics.cluster_info()).brokers

    async def test_a_produced_record_is_read_back(self, topics: TopicBrowser, sandbox: Sandbox):
        made = await sandbox.make()
        produced = await topics.produce(made.name, value=b"hello", key=b"k", partition=0)
        page = await topics.read_page(made.name, start="oldest")
        assert [(r.key, r.value) for r in page.records] == [(b"k", b"hello")]
        record = await topics.read_record(made.name, produced.partition, produced.offset)
        assert record.value == b"hello"

    async def test_a_new_topic_has_no_readers_and_no_groups(
        self, topics: TopicBrowser, sandbox: Sandbox
    ):
        made = await sandbox.make()
        await sandbox.send(made, b"a", b"b")
        assert (await topics.topic_readers(made.name, max_groups=1000)).groups == ()
        assert (await topics.group_page(name_filter=made.name)).groups == ()
        with pytest.raises(NotFound):
            await topics.group_detail(f"{made.name}-no-group")

    async def test_purge_deletes_every_record(self, topics: TopicBrowser, sandbox: Sandbox):
        made = await sandbox.make()
        await sandbox.send(made, b"a", b"b", b"c")
        result = await topics.purge(made.name)
        assert result.deleted == 3
        page = await topics.read_page(made.name, start="oldest")
        assert page.records == ()
