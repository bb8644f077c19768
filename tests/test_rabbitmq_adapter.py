"""The RabbitMQ adapter's browsing, peeking, publishing and purging, against the real broker."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import aio_pika
import pytest

from brokers.base import NotFound
from brokers.rabbitmq import RabbitMQBroker
from brokers.rabbitmq.models import Consumer, OutgoingMessage, QueueQuery, Unroutable
from tests.support.rabbitmq import (
    bind,
    declare,
    declare_exchange,
    delete_queue,
    drain,
    mgmt,
    publish,
    q,
    unique,
    wait_for_depth,
)

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def broker(rabbitmq_config):
    async with RabbitMQBroker(rabbitmq_config) as adapter:
        yield adapter


@pytest.fixture(scope="module")
def five_queues(rabbitmq_vhost):
    """Five queues named <prefix>-0..4 holding 0, 3, 1, 4, 2 messages."""
    prefix = unique("page")
    depths = [0, 3, 1, 4, 2]
    names = [f"{prefix}-{i}" for i in range(5)]
    for name, depth in zip(names, depths, strict=True):
        declare(rabbitmq_vhost, name)
        publish(rabbitmq_vhost, name, *[f"m{n}" for n in range(depth)])
    for name, depth in zip(names, depths, strict=True):
        wait_for_depth(rabbitmq_vhost, name, depth)
    yield prefix
    for name in names:
        delete_queue(rabbitmq_vhost, name)


async def test_it_pages_queues_sorted_by_depth_in_one_request(broker, rabbitmq_vhost, five_queues):
    prefix = five_queues
    query = QueueQuery(vhost=rabbitmq_vhost, name=prefix, sort="depth", reverse=True, page_size=2)
    first = await broker.queue_page(query)
    assert [r.messages for r in first.items] == [4, 3]
    assert first.filtered == 5 and first.page_count == 3 and first.has_next
    assert first.requests == 1 and first.scan is None
    assert first.items[0].consumers is None  # not asked for: no statistics
    last = await broker.queue_page(QueueQuery(**{**query.__dict__, "page": 3}))
    assert [r.messages for r in last.items] == [0]
    assert not last.has_next


async def test_a_page_past_the_end_is_empty_and_knows_the_count(
    broker, rabbitmq_vhost, five_queues
):
    prefix = five_queues
    page = await broker.queue_page(QueueQuery(vhost=rabbitmq_vhost, name=prefix, page=9))
    assert page.past_end and page.items == ()
    assert page.filtered == 5 and page.page_count == 1


async def test_it_filters_names_by_regex_and_shows_stats_when_asked(
    broker, rabbitmq_vhost, five_queues
):
    prefix = five_queues
    query = QueueQuery(vhost=rabbitmq_vhost, name=f"^{prefix}-[13]$", regex=True, stats=True)
    page = await broker.queue_page(query)
    assert sorted(r.name for r in page.items) == [f"{prefix}-1", f"{prefix}-3"]
    # A queue younger than one statistics interval has no consumer count yet:
    # unknown (None), not 0, until RabbitMQ's first sample.
    for _ in range(80):
        if all(r.consumers is not None for r in page.items):
            break
        await asyncio.sleep(0.25)
        page = await broker.queue_page(query)
    assert [(r.consumers, r.publish_rate) for r in page.items] == [(0, 0.0)] * 2


async def test_it_filters_type_and_dead_letter_exchange_by_a_bounded_scan(broker, rabbitmq_vhost):
    prefix = unique("scan")
    declare(rabbitmq_vhost, f"{prefix}-classic")
    declare(rabbitmq_vhost, f"{prefix}-quorum", {"x-queue-type": "quorum"}, durable=True)
    declare(rabbitmq_vhost, f"{prefix}-dlx-arg", {"x-dead-letter-exchange": "somewhere"})
    declare(rabbitmq_vhost, f"{prefix}-pol-q")
    with mgmt() as http:
        http.put(
            f"/api/policies/{q(rabbitmq_vhost)}/{prefix}",
            json={
                "pattern": f"^{prefix}-pol",
                "definition": {"dead-letter-exchange": "by-policy"},
                "apply-to": "queues",
            },
        ).raise_for_status()
    try:
        base = QueueQuery(vhost=rabbitmq_vhost, name=prefix)
        quorum = await broker.queue_page(QueueQuery(**{**base.__dict__, "type": "quorum"}))
        assert [r.name for r in quorum.items] == [f"{prefix}-quorum"]
        assert quorum.scan is not None and quorum.scan.complete and quorum.filtered == 1
        with_dlx = await broker.queue_page(QueueQuery(**{**base.__dict__, "has_dlx": True}))
        found = {r.name: (r.dead_letter_exchange, r.dlx_source) for r in with_dlx.items}
        assert found == {
            f"{prefix}-dlx-arg": ("somewhere", "argument"),
            f"{prefix}-pol-q": ("by-policy", "policy"),
        }
        without = await broker.queue_page(QueueQuery(**{**base.__dict__, "has_dlx": False}))
        assert {r.name for r in without.items} == {f"{prefix}-classic", f"{prefix}-quorum"}
        running = await broker.queue_page(QueueQuery(**{**base.__dict__, "state": "running"}))
        assert len(running.items) == 4
        crashed = await broker.queue_page(QueueQuery(**{**base.__dict__, "state": "crashed"}))
        assert crashed.items == () and crashed.filtered == 0
        limited = QueueQuery(**{**base.__dict__, "type": "classic", "scan_limit": 1})
        stopped = await broker.queue_page(limited)
        assert stopped.scan is not None and stopped.scan.scanned >= 1
    finally:
        with mgmt() as http:
            http.delete(f"/api/policies/{q(rabbitmq_vhost)}/{prefix}")
        for suffix in ("classic", "quorum", "dlx-arg", "pol-q"):
            delete_queue(rabbitmq_vhost, f"{prefix}-{suffix}")


async def test_it_describes_dead_letter_routes_both_ways(broker, rabbitmq_vhost):
    prefix = unique("dl")
    work, dlq, dlx = f"{prefix}-work", f"{prefix}-dlq", f"{prefix}-dlx"
    declare_exchange(rabbitmq_vhost, dlx)
    declare(
        rabbitmq_vhost,
        work,
        {"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"},
    )
    declare(rabbitmq_vhost, dlq)
    bind(rabbitmq_vhost, dlx, dlq, "dead")
    try:
        detail = await broker.queue_detail(rabbitmq_vhost, work)
        assert (detail.dead_letter_exchange, detail.dead_letter_routing_key) == (dlx, "dead")
        assert detail.dlx_source == "argument"
        assert [link.queue for link in detail.dead_letters_to] == [dlq]
        target = await broker.queue_detail(rabbitmq_vhost, dlq)
        assert [link.queue for link in target.dead_letters_from] == [work]
        assert {b.source for b in target.bindings} == {"", dlx}
        assert target.dead_letter_scan is not None and target.dead_letter_scan.complete
    finally:
        for name in (work, dlq):
            delete_queue(rabbitmq_vhost, name)
        with mgmt() as http:
            http.delete(f"/api/exchanges/{q(rabbitmq_vhost)}/{q(dlx)}")


async def test_it_names_the_celery_worker_of_a_consumer(broker, rabbitmq_config, rabbitmq_vhost):
    tasks, pidbox = unique("tasks"), f"{unique('worker')}@host.celery.pidbox"
    connection = await aio_pika.connect(
        "amqp://guest:guest@127.0.0.1:5672/" + q(rabbitmq_vhost),
        client_properties={"connection_name": "fake celery worker"},
    )
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=4)

        async def ack(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            await message.ack()

        for name in (tasks, pidbox):
            queue = await channel.declare_queue(name, auto_delete=True)
            await queue.consume(ack, consumer_tag=f"tag-{name}")

        found: tuple[Consumer, ...] = ()
        # RabbitMQ lists a new consumer before its channel details (connection
        # name, peer) reach the statistics database: wait for those too.
        for _ in range(80):
            found = (await broker.queue_detail(rabbitmq_vhost, tasks)).consumers
            if found and found[0].peer:
                break
            await asyncio.sleep(0.25)
        assert found, "the consumer never showed up"
        (consumer,) = found
        assert consumer.tag == f"tag-{tasks}"
        assert consumer.prefetch == 4 and consumer.ack_required is True
        assert consumer.celery_hostname == pidbox.removesuffix(".celery.pidbox")
        assert consumer.peer.startswith("127.0.0.1:")
    finally:
        await connection.close()


async def test_it_knows_the_age_of_the_head_message(broker, rabbitmq_vhost):
    name = unique("aged")
    declare(rabbitmq_vhost, name)
    published = int(datetime.now(UTC).timestamp()) - 60
    publish(rabbitmq_vhost, name, "old", properties={"timestamp": published})
    try:
        detail = None
        for _ in range(60):
            detail = await broker.queue_detail(rabbitmq_vhost, name)
            if detail.head_message_age is not None:
                break
            await asyncio.sleep(0.25)
        assert detail is not None and detail.head_message_timestamp is not None
        assert detail.head_message_timestamp.timestamp() == published
        assert detail.head_message_age is not None and detail.head_message_age >= 60
    finally:
        delete_queue(rabbitmq_vhost, name)


async def test_a_deleted_queue_is_not_found(broker, rabbitmq_vhost):
    with pytest.raises(NotFound, match="does not exist"):
        await broker.queue_detail(rabbitmq_vhost, unique("gone"))
    with pytest.raises(NotFound):
        await broker.peek(rabbitmq_vhost, unique("gone"), 1)


async def test_a_peek_requeues_everything_it_read(broker, rabbitmq_vhost):
    name = unique("peek")
    declare(rabbitmq_vhost, name)
    publish(rabbitmq_vhost, name, *[f"body-{i}" for i in range(5)])
    try:
        result = await broker.peek(rabbitmq_vhost, name, 3)
        assert [m.body for m in result.messages] == [b"body-0", b"body-1", b"body-2"]
        assert [m.position for m in result.messages] == [1, 2, 3]
        assert result.destructive and result.remaining == 2
        taken = drain(rabbitmq_vhost, name)
        assert sorted(m["payload"] for m in taken) == sorted(
            base64.b64encode(f"body-{i}".encode()).decode() for i in range(5)
        )
        assert sum(m["redelivered"] for m in taken) == 3
    finally:
        delete_queue(rabbitmq_vhost, name)


async def test_a_peek_of_a_quorum_queue_requeues_too(broker, rabbitmq_vhost):
    name = unique("quorum")
    declare(rabbitmq_vhost, name, {"x-queue-type": "quorum"}, durable=True)
    publish(rabbitmq_vhost, name, "q1", "q2")
    try:
        result = await broker.peek(rabbitmq_vhost, name, 5)
        assert [m.body for m in result.messages] == [b"q1", b"q2"]
        assert result.queue_type == "quorum" and result.destructive
        assert len(drain(rabbitmq_vhost, name)) == 2
    finally:
        delete_queue(rabbitmq_vhost, name)


async def test_a_peek_keeps_every_amqp_header_type(broker, rabbitmq_vhost):
    name = unique("types")
    declare(rabbitmq_vhost, name)
    moment = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)
    headers: dict[str, Any] = {
        "string": "héllo <b>",
        "int": 42,
        "long": 2**40,
        "negative": -7,
        "float": 1.5,
        "bool": True,
        "void": None,
        "bytes": bytearray(b"\x00\xff\x10"),
        "decimal": Decimal("3.14"),
        "timestamp": moment,
        "table": {"nested": {"deeper": [1, "two", bytearray(b"3")]}},
        "array": [1, 2.5, None, {"k": "v"}, [moment]],
    }
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/" + q(rabbitmq_vhost))
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.default_exchange.publish(
            aio_pika.Message(b"{}", headers=headers, content_type="application/json"), name
        )
    finally:
        await connection.close()
    try:
        (message,) = (await broker.peek(rabbitmq_vhost, name, 1)).messages
        assert message.headers == headers
        assert type(message.headers["bytes"]) is bytearray
        assert type(message.headers["decimal"]) is Decimal
        assert message.properties["content_type"] == "application/json"
    finally:
        delete_queue(rabbitmq_vhost, name)


async def test_a_peek_returns_a_10_mb_body_and_invalid_utf8_byte_for_byte(broker, rabbitmq_vhost):
    name = unique("big")
    declare(rabbitmq_vhost, name)
    big = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    invalid = b"\xff\xfe not \xc3\x28 utf-8 \x80"
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/" + q(rabbitmq_vhost))
    try:
        channel = await connection.channel(publisher_confirms=True)
        for body in (big, invalid):
            await channel.default_exchange.publish(aio_pika.Message(body), name)
    finally:
        await connection.close()
    try:
        result = await broker.peek(rabbitmq_vhost, name, 5)
        assert [m.body for m in result.messages] == [big, invalid]
        assert len(drain(rabbitmq_vhost, name)) == 2  # both back in the queue
    finally:
        delete_queue(rabbitmq_vhost, name)


async def test_a_stream_is_read_without_side_effects(broker, rabbitmq_vhost):
    name = unique("stream")
    declare(rabbitmq_vhost, name, {"x-queue-type": "stream"}, durable=True)
    try:
        publish(rabbitmq_vhost, name, "s1", "s2", "s3")
        result = await broker.peek(rabbitmq_vhost, name, 10)
        assert [m.body for m in result.messages] == [b"s1", b"s2", b"s3"]
        assert not result.destructive and result.queue_type == "stream"
    finally:
        delete_queue(rabbitmq_vhost, name)


async def test_it_publishes_with_confirms_and_refuses_to_drop_unroutable(broker, rabbitmq_vhost):
    name, lonely = unique("pub"), unique("lonely")
    declare(rabbitmq_vhost, name)
    declare_exchange(rabbitmq_vhost, lonely, "fanout")
    try:
        result = await broker.publish(
            rabbitmq_vhost,
            OutgoingMessage(
                exchange="",
                routing_key=name,
                body=b"hello",
                headers={"x-n": 1},
                properties={"message_id": "m-1", "delivery_mode": 2},
            ),
        )
        assert result.confirmed and result.message_id == "m-1"
        with pytest.raises(Unroutable, match="could not be routed"):
            await broker.publish(rabbitmq_vhost, OutgoingMessage(lonely, "any", b"lost?"))
        with pytest.raises(NotFound, match="no exchange"):
            await broker.publish(rabbitmq_vhost, OutgoingMessage(unique("nope"), "k", b"x"))
        (message,) = (await broker.peek(rabbitmq_vhost, name, 5)).messages
        assert message.body == b"hello" and message.properties["delivery_mode"] == 2
        assert message.headers == {"x-n": 1}
    finally:
        delete_queue(rabbitmq_vhost, name)
        with mgmt() as http:
            http.delete(f"/api/exchanges/{q(rabbitmq_vhost)}/{q(lonely)}")


async def test_it_purges_and_says_how_many(broker, rabbitmq_vhost):
    name = unique("purge")
    declare(rabbitmq_vhost, name)
    publish(rabbitmq_vhost, name, "a", "b", "c", "d")
    try:
        result = await broker.purge(rabbitmq_vhost, name)
        assert (result.purged, result.ready_before) == (4, 4)
        assert drain(rabbitmq_vhost, name) == []
    finally:
        delete_queue(rabbitmq_vhost, name)


async def test_it_lists_exchanges_with_bindings_and_vhosts_with_totals(broker, rabbitmq_vhost):
    exchange, queue = unique("ex"), unique("bound")
    declare_exchange(rabbitmq_vhost, exchange, "topic")
    declare(rabbitmq_vhost, queue)
    bind(rabbitmq_vhost, exchange, queue, "user.*")
    try:
        page = await broker.exchange_page(rabbitmq_vhost, name=exchange)
        assert [(x.name, x.type) for x in page.items] == [(exchange, "topic")]
        detail = await broker.exchange_detail(rabbitmq_vhost, exchange)
        assert [(b.destination, b.routing_key) for b in detail.bindings_out] == [(queue, "user.*")]
        default = await broker.exchange_detail(rabbitmq_vhost, "")
        assert default.is_default and default.bindings_out == ()
        vhosts = {v.name: v for v in await broker.vhosts()}
        assert vhosts[rabbitmq_vhost].queues is not None and vhosts[rabbitmq_vhost].queues >= 1
    finally:
        delete_queue(rabbitmq_vhost, queue)
        with mgmt() as http:
            http.delete(f"/api/exchanges/{q(rabbitmq_vhost)}/{q(exchange)}")
