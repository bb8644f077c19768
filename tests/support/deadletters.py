"""Helpers of the dead-letter tests: real RabbitMQ topology and Kafka topics, cleaned up.

Holds no tests. RabbitMQ objects live in the run's test vhost; Kafka topics
have unique names and are deleted by :func:`kafka_topic`'s caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import aio_pika
import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from tests.conftest import GUEST, KAFKA, MGMT
from tests.settings import RUN_ID

T = TypeVar("T")


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def mgmt() -> httpx.Client:
    return httpx.Client(base_url=MGMT, auth=GUEST, timeout=10)


def q(name: str) -> str:
    return quote(name, safe="")


def wait_for(check: Callable[[], T | None], timeout: float = 20, what: str = "") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or check}")
        time.sleep(0.1)


async def async_wait_for(check: Callable[[], Any], seconds: float = 20, what: str = "") -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what or check}")
        await asyncio.sleep(0.1)


# -- RabbitMQ ----------------------------------------------------------------------


async def amqp(vhost: str) -> aio_pika.abc.AbstractConnection:
    return await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=vhost
    )


async def depth(vhost: str, queue: str) -> int:
    """Ready messages, exactly (a passive declare), not the management API's lagging count."""
    connection = await amqp(vhost)
    try:
        channel = await connection.channel()
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        return int(count or 0)
    finally:
        await connection.close()


async def dead_letter_topology(vhost: str, base: str) -> tuple[str, str, str]:
    """``<base>-events`` (topic) -> ``<base>-work`` -> ``<base>-dlx`` -> ``<base>.dlq``.

    Returns (events exchange, work queue, dlq).
    """
    events, work, dlx, dlq = f"{base}-events", f"{base}-work", f"{base}-dlx", f"{base}.dlq"
    connection = await amqp(vhost)
    try:
        channel = await connection.channel()
        ex = await channel.declare_exchange(events, aio_pika.ExchangeType.TOPIC)
        dead = await channel.declare_exchange(dlx, aio_pika.ExchangeType.DIRECT)
        queue = await channel.declare_queue(
            work,
            arguments={"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"},
        )
        await queue.bind(ex, "order.#")
        target = await channel.declare_queue(dlq)
        await target.bind(dead, "dead")
    finally:
        await connection.close()
    return events, work, dlq


async def reject_through(
    vhost: str, events: str, work: str, ids: list[str], bodies: list[bytes] | None = None
) -> None:
    """Publish messages with these ids and reject each one: real ``x-death`` headers."""
    connection = await amqp(vhost)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(events)
        for i, message_id in enumerate(ids):
            await exchange.publish(
                aio_pika.Message(
                    bodies[i] if bodies is not None else f'{{"order": {i}}}'.encode(),
                    message_id=message_id,
                    content_type="application/json",
                    headers={"x-tenant": "acme"},
                ),
                routing_key=f"order.{i}.created",
            )
        queue = await channel.get_queue(work)
        for _ in ids:
            message = None
            deadline = time.monotonic() + 10
            while message is None and time.monotonic() < deadline:
                message = await queue.get(fail=False)
            assert message is not None, "a published message never reached the work queue"
            await message.reject(requeue=False)
    finally:
        await connection.close()


async def publish_to(vhost: str, queue: str, bodies: list[bytes], **props: Any) -> None:
    connection = await amqp(vhost)
    try:
        channel = await connection.channel(publisher_confirms=True)
        for body in bodies:
            await channel.default_exchange.publish(aio_pika.Message(body, **props), queue)
    finally:
        await connection.close()


def publish_http(vhost: str, queue: str, body: str, times: int = 1) -> None:
    """Publish through the management API: unlike aiormq, it adds no message id."""
    with mgmt() as http:
        for _ in range(times):
            answer = http.post(
                f"/api/exchanges/{q(vhost)}/amq.default/publish",
                json={"properties": {}, "routing_key": queue, "payload": body,
                      "payload_encoding": "string"},
            )  # fmt: skip
            answer.raise_for_status()
            assert answer.json()["routed"]


# -- Kafka -------------------------------------------------------------------------


def kafka_name(suffix: str = "-dlq") -> str:
    return f"mqb-test-{RUN_ID}-{uuid.uuid4().hex[:8]}{suffix}"


def create_topic(name: str, partitions: int = 1) -> str:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    admin.create_topics([NewTopic(name, partitions, 1)], request_timeout=15)[name].result()

    def ready() -> bool:
        topic = admin.list_topics(timeout=5).topics.get(name)
        return bool(
            topic
            and len(topic.partitions) == partitions
            and all(p.leader >= 0 for p in topic.partitions.values())
        )

    wait_for(ready, what=f"leaders of {name}")
    return name


def delete_topics(*names: str) -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    for future in admin.delete_topics(list(names), request_timeout=15).values():
        future.result()


def delete_group(group: str) -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    for future in admin.delete_consumer_groups([group], request_timeout=15).values():
        # Already gone, or a static member still in it until its session ends.
        with contextlib.suppress(Exception):
            future.result()


Record = tuple[bytes | None, bytes, list[tuple[str, str | bytes | None]]]


def produce(topic: str, records: list[Record]) -> None:
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 5})
    for i, (key, value, headers) in enumerate(records):
        producer.produce(topic, value, key=key, headers=headers, partition=i % _partitions(topic))
        producer.poll(0)
    assert producer.flush(15) == 0


def _partitions(topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    return len(admin.list_topics(topic=topic, timeout=5).topics[topic].partitions)


def committed_vs_end(topic: str, group: str) -> tuple[dict[int, int], dict[int, int]]:
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in range(_partitions(topic))]
        committed = {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
        end = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions}
        return committed, end
    finally:
        consumer.close()
