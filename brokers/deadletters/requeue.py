"""Sending one dead letter back: to a RabbitMQ exchange or a Kafka topic, confirmed.

Features: ``requeue_rabbitmq`` publishes with publisher confirms and mandatory
routing on a channel opened with ``on_return_raises=True`` (aio-pika only
raises for returned messages then), so "sent" means the broker routed it to at
least one queue and confirmed it. ``requeue_kafka`` checks that the topic
exists (``allow.auto.create.topics`` is off in the client config), then
produces with an idempotent producer in a worker thread and awaits the
delivery report.

Both keep the message's identity (message id, correlation id, content type,
headers, Kafka key) and set ``x-mqboard-requeue-count`` to one more than the
value the message carried. ``x-death`` is kept: RabbitMQ appends to it if the
message dead-letters again, which keeps the whole history.

Kafka: a null key or value is produced as null (a null value is a tombstone on
a compacted topic, an empty one is not); headers keep their order and repeated
keys. A keyed record is placed by the Java-compatible partitioner
(``murmur2_random``: where Java and Spring producers put the same key); a
keyless one goes back to its original partition while the topic has it.

Settings: the cluster's ``timeout`` bounds every call. Limitations: the AMQP
``user-id`` property is moved to the header ``x-original-user-id`` (the broker
refuses a user id other than the publishing user's), and ``expiration`` is not
copied (a message that expired would expire again at once).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aio_pika
import aiormq
from aio_pika.exceptions import DeliveryError
from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient
from pamqp.commands import Basic

from brokers.base import BrokerError, BrokerTimeout, BrokerUnavailable, ClusterConfig
from brokers.deadletters.rabbitmq_capture import connect
from brokers.deadletters.values import from_json, kafka_headers_from_json
from brokers.kafka_clients import JAVA_PARTITIONER
from brokers.validate import amqp_message as check_amqp
from brokers.validate import kafka_record as check_kafka

REQUEUE_COUNT_HEADER = "x-mqboard-requeue-count"
ANY_PARTITION = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the configured partitioner chooses


class Unroutable(BrokerError):
    """The target exchange or topic does not exist, or nothing is bound to take the message."""


@dataclass(frozen=True)
class AmqpLetter:
    """A message to publish: JSON-safe properties and headers as captured."""

    exchange: str
    routing_key: str
    body: bytes
    properties: Mapping[str, Any]
    headers: Mapping[str, Any]


@dataclass(frozen=True)
class KafkaLetter:
    """A record to produce. ``value`` None is a null value (a tombstone on compacted topics).

    ``partition``: where a keyless record goes if the topic still has that
    partition (its original one); otherwise, and for keyed records, the
    Java-compatible partitioner decides.
    """

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, str | bytes | None]]
    partition: int | None = None

    def partition_in(self, count: int) -> int:
        """The partition to produce to, given the topic's partition count (or ANY_PARTITION)."""
        if self.key is not None or self.partition is None:
            return ANY_PARTITION
        return self.partition if 0 <= self.partition < count else ANY_PARTITION


def next_count(value: object) -> int:
    """One more than a requeue-count header's value (0 when absent or garbled)."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", "replace")
    try:
        return max(int(str(value)), 0) + 1 if value is not None else 1
    except ValueError:
        return 1


def amqp_message(letter: AmqpLetter) -> aio_pika.Message:
    props = letter.properties
    headers = from_json(dict(letter.headers))
    table: dict[str, Any] = dict(headers) if isinstance(headers, dict) else {}
    table[REQUEUE_COUNT_HEADER] = next_count(table.get(REQUEUE_COUNT_HEADER))
    if props.get("user_id"):
        table["x-original-user-id"] = props["user_id"]
    timestamp = from_json(props.get("timestamp"))
    priority = props.get("priority")
    mode = props.get("delivery_mode")
    return aio_pika.Message(
        letter.body,
        headers=table,
        content_type=props.get("content_type"),
        content_encoding=props.get("content_encoding"),
        delivery_mode=int(mode) if isinstance(mode, int) else None,
        priority=int(priority) if isinstance(priority, int) else None,
        correlation_id=props.get("correlation_id"),
        reply_to=props.get("reply_to"),
        message_id=props.get("message_id"),
        timestamp=timestamp if isinstance(timestamp, datetime) else None,
        type=props.get("type"),
        app_id=props.get("app_id"),
    )


def amqp_properties(letter: AmqpLetter) -> Basic.Properties:
    """The letter's properties for a raw publish: the same fields as :func:`amqp_message`."""
    message = amqp_message(letter)
    properties: Basic.Properties = message.properties
    if not properties.message_id:
        # Returns are matched to their publish by message id.
        properties.message_id = uuid.uuid4().hex
    return properties


async def requeue_rabbitmq(config: ClusterConfig, vhost: str, letter: AmqpLetter) -> None:
    """Publish and wait for the broker's confirm; :class:`Unroutable` if it cannot route it."""
    check_amqp(
        vhost=vhost,
        exchange=letter.exchange,
        routing_key=letter.routing_key,
        headers=letter.headers,
        properties=letter.properties,
    )
    where = f"exchange {letter.exchange or '(default)'!r} in vhost {vhost!r}"
    connection = await connect(config, vhost)
    try:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        if letter.exchange:
            exchange = await channel.get_exchange(letter.exchange, ensure=False)
        else:
            exchange = channel.default_exchange
        await exchange.publish(
            amqp_message(letter),
            routing_key=letter.routing_key,
            mandatory=True,
            timeout=config.timeout,
        )
    except DeliveryError:
        raise Unroutable(
            f"unroutable: no queue is bound to {where} for routing key {letter.routing_key!r}"
        ) from None
    except aiormq.exceptions.ChannelNotFoundEntity:
        raise Unroutable(f"unroutable: {where} does not exist") from None
    except aiormq.exceptions.ChannelAccessRefused as exc:
        raise BrokerError(f"publishing to {where} was refused: {exc}") from None
    except TimeoutError:
        raise BrokerTimeout(f"{where} did not confirm within {config.timeout:g} s") from None
    except (aiormq.exceptions.AMQPError, OSError) as exc:
        raise BrokerUnavailable(
            f"publishing to {where} failed: {exc or type(exc).__name__}"
        ) from None
    finally:
        await connection.close()


def kafka_record(
    topic: str,
    key: bytes | None,
    value: bytes | None,
    headers_json: Any,
    *,
    partition: int | None = None,
) -> KafkaLetter:
    """The record to produce: captured headers with the requeue count set (last value wins).

    Every header keeps its place and repeated keys stay repeated; only our own
    requeue counter is replaced by one at the end.
    """
    headers = kafka_headers_from_json(headers_json)
    previous = [v for k, v in headers if k == REQUEUE_COUNT_HEADER]
    count = next_count(previous[-1] if previous else None)
    kept: list[tuple[str, str | bytes | None]] = [
        (k, v) for k, v in headers if k != REQUEUE_COUNT_HEADER
    ]
    kept.append((REQUEUE_COUNT_HEADER, str(count).encode("ascii")))
    return KafkaLetter(topic=topic, key=key, value=value, headers=kept, partition=partition)


def _produce(client_config: dict[str, Any], letter: KafkaLetter, timeout: float) -> None:
    admin = AdminClient({k: v for k, v in client_config.items() if k != "logger"})
    try:
        meta = admin.list_topics(topic=letter.topic, timeout=timeout)
    except KafkaException as exc:
        raise BrokerUnavailable(f"Kafka did not answer: {exc}") from None
    topic = meta.topics.get(letter.topic)
    if topic is None or topic.error is not None or not topic.partitions:
        raise Unroutable(f"unknown topic {letter.topic!r}")
    producer = Producer(
        {
            **client_config,
            **JAVA_PARTITIONER,
            "enable.idempotence": True,
            "message.timeout.ms": int(timeout * 1000),
        }
    )
    outcome: list[KafkaError | None] = []
    partition = letter.partition_in(len(topic.partitions))
    producer.produce(
        letter.topic,
        letter.value,
        key=letter.key,
        headers=letter.headers,
        on_delivery=lambda err, _msg: outcome.append(err),
        partition=partition,
    )
    remaining = producer.flush(timeout + 1)
    if remaining or not outcome:
        raise BrokerTimeout(f"topic {letter.topic!r}: no delivery report within {timeout:g} s")
    error = outcome[0]
    if error is not None:
        if error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
            raise Unroutable(f"unknown topic {letter.topic!r}")
        raise BrokerError(f"topic {letter.topic!r}: {error.str()}")


async def requeue_kafka(client_config: dict[str, Any], letter: KafkaLetter, seconds: float) -> None:
    """Produce one record and wait for its delivery report (in a thread: librdkafka blocks)."""
    check_kafka(letter.topic, letter.key, letter.value, letter.headers)  # before librdkafka
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _produce, client_config, letter, seconds)
