"""RabbitMQ sampling on the real broker: every page, depth, rates, consumers, Celery workers."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aio_pika
import pytest

from brokers.base import BrokerUnavailable
from brokers.base.metrics import queue_entity
from brokers.rabbitmq import RabbitMQBroker
from brokers.rabbitmq.metrics import (
    celery_hostname,
    cluster_totals,
    consumers,
    queue_stats,
    sweep_queues,
)
from brokers.rabbitmq.sampler import RabbitMQSampler
from tests.support.metrics import declare, publish, unique, wait_for_ready

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def api(rabbitmq_config):
    broker = RabbitMQBroker(rabbitmq_config)
    yield broker
    await broker.close()


async def poll(check, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        found = await check()
        if found or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.3)


def test_it_parses_worker_hostnames_from_pidbox_queues():
    assert celery_hostname("celery@web-1.example.com.celery.pidbox") == "celery@web-1.example.com"
    assert celery_hostname("w1@h.demo-celery.pidbox") == "w1@h"
    assert celery_hostname("1f2e.reply.celery.pidbox") is None
    assert celery_hostname("orders") is None


async def test_a_sweep_walks_every_page(api, rabbitmq_vhost):
    names = sorted(unique("page") for _ in range(7))
    for name in names:
        await asyncio.to_thread(declare, rabbitmq_vhost, name)
    sweep = await sweep_queues(api, vhost=rabbitmq_vhost, page_size=3, concurrency=2)
    found = {q.name for q in sweep.queues}
    assert set(names) <= found
    assert sweep.total is not None
    assert sweep.pages >= 3 and sweep.pages == -(-sweep.total // 3)
    assert len(found) == len(sweep.queues), "no queue twice"


async def test_a_failed_page_fails_the_whole_sweep():
    class Flaky:
        async def management_page(self, path: str, params: dict[str, str]) -> tuple[Any, str]:
            if params["page"] == "2":
                raise BrokerUnavailable("gone")
            return {"page_count": 3, "items": [{"name": "a", "vhost": "/"}]}, ""

        async def management_get(self, path: str, params: dict[str, str] | None = None) -> Any:
            raise AssertionError("not used")

    with pytest.raises(BrokerUnavailable):
        await sweep_queues(Flaky(), page_size=1)


async def test_it_reads_depth_unacked_and_consumers(api, rabbitmq_config, rabbitmq_vhost):
    name = unique("depth")
    await asyncio.to_thread(declare, rabbitmq_vhost, name)
    await asyncio.to_thread(publish, rabbitmq_vhost, name, 3)
    await asyncio.to_thread(wait_for_ready, rabbitmq_vhost, name, 3)
    connection = await aio_pika.connect(
        f"amqp://guest:guest@127.0.0.1:5672/{rabbitmq_config.amqp_url.rsplit('/', 1)[1]}"
    )
    try:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1)
        queue = await channel.get_queue(name)
        held: list[Any] = []

        async def hold(message: Any) -> None:
            held.append(message)  # never acked: one message stays unacked

        await queue.consume(hold)

        async def settled():
            stats = await queue_stats(api, rabbitmq_vhost, name)
            return (
                stats
                if stats and (stats.ready, stats.unacked, stats.consumers) == (2, 1, 1)
                else None
            )

        stats = await poll(settled)
        assert stats, "depth 3 = 2 ready + 1 unacked, with one consumer"
        assert stats.messages == 3
        seen = await consumers(api)
        mine = [c for c in seen if c.queue == name and c.vhost == rabbitmq_vhost]
        assert len(mine) == 1 and mine[0].prefetch == 1 and mine[0].ack_required
        assert mine[0].connection and mine[0].celery_hostname is None
    finally:
        await connection.close()


async def test_a_celery_worker_is_named_by_its_pidbox_consumer(
    api, rabbitmq_config, rabbitmq_vhost
):
    tasks, hostname = unique("tasks"), f"{unique('worker')}@test-host"
    pidbox = f"{hostname}.celery.pidbox"
    vhost_part = rabbitmq_config.amqp_url.rsplit("/", 1)[1]
    connection = await aio_pika.connect(f"amqp://guest:guest@127.0.0.1:5672/{vhost_part}")
    try:
        channel = await connection.channel()

        async def ignore(message: Any) -> None:
            return None

        for queue_name in (tasks, pidbox):
            queue = await channel.declare_queue(queue_name, auto_delete=True)
            await queue.consume(ignore)

        async def labelled():
            found = [c for c in await consumers(api) if c.queue in (tasks, pidbox)]
            # Channel details (and so the connection) show up a little later.
            return found if len(found) == 2 and all(c.connection for c in found) else None

        found = await poll(labelled)
        assert found and {c.celery_hostname for c in found} == {hostname}
        sampler = RabbitMQSampler(rabbitmq_config)
        sample = await sampler.full(api, vhost=rabbitmq_vhost)
        workers = [c for c in sample.consumers or () if c.kind == "celery"]
        assert [(w.identity, w.source) for w in workers] == [
            (hostname, queue_entity(rabbitmq_vhost, tasks))
        ], "one worker row per task queue, none for its pidbox"
    finally:
        await connection.close()


async def test_a_full_sample_has_every_queue_the_totals_and_dlq_arrivals(
    api, rabbitmq_config, rabbitmq_vhost
):
    orders, dlq = unique("orders"), unique("orders") + ".dlq"
    for name in (orders, dlq):
        await asyncio.to_thread(declare, rabbitmq_vhost, name)
    await asyncio.to_thread(publish, rabbitmq_vhost, orders, 2)
    await asyncio.to_thread(wait_for_ready, rabbitmq_vhost, orders, 2)
    sampler = RabbitMQSampler(rabbitmq_config)
    first = await sampler.full(api, vhost=rabbitmq_vhost)
    points = {p.entity: p for p in first.points}
    assert points[queue_entity(rabbitmq_vhost, orders)].values[:3] == (2, 2, 0)
    assert points[queue_entity(rabbitmq_vhost, orders)].extra is None
    assert points[queue_entity(rabbitmq_vhost, dlq)].extra == {"dlq": True, "arrival_rate": None}
    await asyncio.to_thread(publish, rabbitmq_vhost, dlq, 4)
    await asyncio.to_thread(wait_for_ready, rabbitmq_vhost, dlq, 4)
    second = await sampler.full(api, vhost=rabbitmq_vhost)
    extra = {p.entity: p.extra for p in second.points}[queue_entity(rabbitmq_vhost, dlq)]
    assert extra and extra["arrival_rate"] > 0, "depth grew: dead letters arrived"
    totals = await cluster_totals(api)
    assert totals.queues is not None and totals.queues >= 2
    assert first.totals[0] is not None
    assert await queue_stats(api, rabbitmq_vhost, unique("missing")) is None


async def test_watched_queues_are_read_one_by_one(api, rabbitmq_config, rabbitmq_vhost):
    name = unique("watched")
    await asyncio.to_thread(declare, rabbitmq_vhost, name)
    sampler = RabbitMQSampler(rabbitmq_config)
    entity = queue_entity(rabbitmq_vhost, name)
    points = await sampler.watched(
        api,
        {
            ("queue", entity),
            ("queue", queue_entity(rabbitmq_vhost, unique("gone"))),
            ("cluster", "x"),
        },
    )
    assert {p.entity_type for p in points} == {"queue", "cluster"}
    assert [p.entity for p in points if p.entity_type == "queue"] == [entity]


async def test_a_watched_queue_has_its_exact_ready_count_at_once(api, rabbitmq_vhost):
    """The management API's count lags by its statistics interval; a watched queue's does not."""
    name = unique("exact")
    await asyncio.to_thread(declare, rabbitmq_vhost, name)
    for count in (3, 7):
        await asyncio.to_thread(publish, rabbitmq_vhost, name, count - (3 if count == 7 else 0))
        stats = await queue_stats(api, rabbitmq_vhost, name)
        assert stats is not None
        assert (stats.ready, stats.consumers) == (count, 0)
        assert stats.messages == count + (stats.unacked or 0)


def test_a_consumer_without_channel_details_yet_waits_for_the_next_sample():
    from brokers.rabbitmq.metrics import AmqpConsumer
    from brokers.rabbitmq.sampler import seen_consumers

    early = AmqpConsumer("/", "orders", "ctag1", "", "", "", "", None, None, None)
    known = AmqpConsumer(
        "/", "orders", "ctag1", "ch (1)", "conn", "10.0.0.1", "guest", 1, True, True
    )
    assert [c.identity for c in seen_consumers([early, known])] == ["ctag1 on ch (1)"]
