"""Helpers of the inbox and requeue tests: real dead letters, captured by the real engine.

Holds no tests. RabbitMQ: messages published to ``<base>-events`` and rejected
from ``<base>-work`` land in ``<base>.dlq`` with real ``x-death`` headers.
Kafka: Spring-style DLT records naming a real origin topic. Both are captured
into DeadLetter rows by the real capture engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aio_pika
from asgiref.sync import sync_to_async
from confluent_kafka import Consumer
from django.db import OperationalError

from brokers.base import BrokerError
from dashboard.core import clusters
from dashboard.deadletters.capture import make_capture_engine
from dashboard.deadletters.store import CaptureTarget
from dashboard.models import DeadLetter, ManagedDeadLetterQueue
from tests.conftest import KAFKA
from tests.support import deadletters as h


@sync_to_async
def manage(slug: str, vhost: str, name: str) -> CaptureTarget:
    cluster = clusters.sync_cluster_rows()[slug]
    row, _ = ManagedDeadLetterQueue.objects.get_or_create(cluster=cluster, vhost=vhost, name=name)
    return CaptureTarget(row.pk, cluster.pk, slug, cluster.kind, vhost, name)


@sync_to_async
def rows_of(dlq: str) -> list[DeadLetter]:
    return list(DeadLetter.objects.filter(dlq=dlq).select_related("cluster").order_by("pk"))


@sync_to_async
def stored_count(dlq: str) -> int:
    """Rows of a DLQ, read while the capture engine writes from its own thread.

    The tests' in-memory SQLite shares one cache between connections: a read
    that meets the engine's write transaction fails with "table is locked";
    that only means "not yet".
    """
    try:
        return DeadLetter.objects.filter(dlq=dlq).count()
    except OperationalError:
        return -1


async def capture_until(target: CaptureTarget, done: Callable[[], Awaitable[bool]]) -> None:
    engine = make_capture_engine(target)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))

    async def finished() -> bool:
        if task.done():
            task.result()
            raise AssertionError("the capture engine stopped by itself")
        return bool(await done())

    try:
        await h.async_wait_for(finished, what="capture")
    finally:
        stop.set()
        with contextlib.suppress(BrokerError):
            await asyncio.wait_for(task, 15)


@dataclass(frozen=True)
class RabbitFlow:
    vhost: str
    events: str
    work: str
    dlq: str
    target: CaptureTarget


async def rabbitmq_dead_letters(
    vhost: str, ids: list[str], prefix: str = "inb", bodies: list[bytes] | None = None
) -> RabbitFlow:
    """Really dead-letter messages with these ids (and bodies) and capture them into rows."""
    events, work, dlq = await h.dead_letter_topology(vhost, h.unique(prefix))
    flow = RabbitFlow(vhost, events, work, dlq, await manage("test-rabbitmq", vhost, dlq))
    await dead_letter_again(flow, ids, bodies)
    return flow


async def dead_letter_again(
    flow: RabbitFlow, ids: list[str], bodies: list[bytes] | None = None
) -> None:
    """Dead-letter (more) messages through the flow's work queue and capture them."""
    before = len(await rows_of(flow.dlq))
    await h.reject_through(flow.vhost, flow.events, flow.work, ids, bodies)

    async def stored() -> bool:
        return await stored_count(flow.dlq) >= before + len(ids)

    await capture_until(flow.target, stored)


async def take_all(
    vhost: str, queue: str, expect: int = 1
) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Get ``expect`` messages from a queue (acked), waiting up to 10 s for them."""
    connection = await h.amqp(vhost)
    try:
        channel = await connection.channel()
        found: list[aio_pika.abc.AbstractIncomingMessage] = []
        amqp_queue = await channel.get_queue(queue)

        async def more() -> bool:
            message = await amqp_queue.get(fail=False, no_ack=True)
            if message is not None:
                found.append(message)
            return len(found) >= expect

        await h.async_wait_for(more, 10, what=f"{expect} message(s) in {queue}")
        return found
    finally:
        await connection.close()


def spring_record(i: int, origin: str, key: bytes) -> h.Record:
    headers: list[tuple[str, str | bytes | None]] = [
        ("kafka_dlt-original-topic", origin.encode()),
        ("kafka_dlt-original-partition", struct.pack(">i", 0)),
        ("kafka_dlt-original-offset", struct.pack(">q", 100 + i)),
        ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", f"order {i} has no customer".encode()),
        ("x-tenant", b"acme"),
    ]
    return (key, f'{{"order": {i}}}'.encode(), headers)


async def kafka_dead_letters(origin: str, dlq: str, keys: list[bytes]) -> list[DeadLetter]:
    """Spring-style dead letters from ``origin`` in ``dlq`` (both exist), captured."""
    before = len(await rows_of(dlq))
    await sync_to_async(h.produce)(dlq, [spring_record(i, origin, k) for i, k in enumerate(keys)])
    target = await manage("test-kafka", "", dlq)

    async def stored() -> bool:
        return await stored_count(dlq) >= before + len(keys)

    await capture_until(target, stored)
    return await rows_of(dlq)


Read = tuple[bytes | None, bytes, Any]


def read_topic(topic: str, expect: int) -> list[Read]:
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"read-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        found: list[Read] = []

        def more() -> bool:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                found.append((message.key(), message.value() or b"", message.headers() or []))
            return len(found) >= expect

        h.wait_for(more, 30, what=f"{expect} record(s) in {topic}")
        return found
    finally:
        consumer.close()


# -- scripts for `python -c`: capture into the database of DATABASE_URL ---------

KAFKA_CAPTURE = """
import asyncio, json, sys
import django
django.setup()
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h
rows = asyncio.run(flow.kafka_dead_letters(sys.argv[1], sys.argv[2], [sys.argv[3].encode()]))
print(json.dumps({"id": rows[0].pk}))
"""

CAPTURE = """
import asyncio, json, sys
import django
django.setup()
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h
made = asyncio.run(flow.rabbitmq_dead_letters(sys.argv[1], [sys.argv[2]], prefix="brw"))
rows = asyncio.run(flow.rows_of(made.dlq))
print(json.dumps({"id": rows[0].pk, "work": made.work, "dlq": made.dlq}))
"""
