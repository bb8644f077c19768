"""Writing to Kafka: produce one record, purge a topic or a partition.

Features: produce a record (optional partition, key, headers with repeated
keys and null values, value) and wait for its delivery report; purge with
DeleteRecords up to each partition's high watermark, reporting the offsets
before and after.

Produce uses the plain ``Producer`` in a worker thread (the asyncio producer's
batched path drops per-message headers), long-lived and shared per process
(:mod:`brokers.kafka.clients`), ``acks=all``; the record size limit is the
broker's (``message.max.bytes``) or the topic's (``max.message.bytes``).

Every string is checked first (:mod:`brokers.base.validate`): one librdkafka
cannot take is an ``InvalidValue``, never a crash or a changed record.

Purge is refused on compact-only topics (``cleanup.policy=compact``), where
Kafka cannot delete records by offset. The topic must exist: producing never
creates a topic.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from brokers.base import BrokerError, NotFound
from brokers.base.browse import Header
from brokers.base.validate import kafka_record
from brokers.kafka import KafkaBroker
from brokers.kafka.errors import CompactedTopic
from brokers.kafka.models import Produced, PurgedPartition, PurgeResult, is_compact_only
from brokers.kafka.topics import cleanup_policies, topic_partitions


async def produce(
    broker: KafkaBroker,
    topic: str,
    *,
    value: bytes | None,
    key: bytes | None = None,
    headers: list[Header] | None = None,
    partition: int | None = None,
) -> Produced:
    # Before librdkafka: a lone surrogate in a header name kills the process.
    kafka_record(topic, key, value, headers)
    partitions = await topic_partitions(broker, topic)
    if partition is not None and partition not in partitions:
        raise NotFound(f"topic {topic!r} has no partition {partition}")
    producer = broker.clients.producer()
    return await broker.blocking(
        lambda: _produce(producer, topic, value, key, headers or [], partition, broker),
        what=f"produce to {topic!r}",
    )


def _produce(
    producer: Any,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    headers: list[Header],
    partition: int | None,
    broker: KafkaBroker,
) -> Produced:
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def delivered(error: KafkaError | None, message: Any) -> None:
        outcome["error"], outcome["message"] = error, message
        done.set()

    extra: dict[str, Any] = {} if partition is None else {"partition": partition}
    try:
        producer.produce(
            topic, value=value, key=key, headers=headers, on_delivery=delivered, **extra
        )
    except BufferError:
        raise BrokerError("the dashboard's producer queue is full; try again") from None
    deadline = time.monotonic() + broker.config.timeout
    # The producer is shared: whichever thread polls serves every delivery report.
    while not done.is_set() and time.monotonic() < deadline:
        producer.poll(0.05)
    if not done.is_set():
        raise broker.translate(None, f"delivery report from {topic!r}")
    if outcome["error"] is not None:
        raise KafkaException(outcome["error"])
    message = outcome["message"]
    _, ms = message.timestamp()
    return Produced(
        topic=topic,
        partition=message.partition(),
        offset=message.offset(),
        timestamp=datetime.fromtimestamp(ms / 1000, UTC) if ms and ms > 0 else None,
    )


async def purge(broker: KafkaBroker, topic: str, *, partition: int | None = None) -> PurgeResult:
    """DeleteRecords up to the high watermark of every partition (or of one)."""
    partitions = await topic_partitions(broker, topic)
    if partition is not None:
        if partition not in partitions:
            raise NotFound(f"topic {topic!r} has no partition {partition}")
        partitions = [partition]
    policy = (await cleanup_policies(broker, [topic])).get(topic)
    if policy is None:
        raise BrokerError(f"could not read the cleanup.policy of {topic!r}; nothing was deleted")
    if is_compact_only(policy):
        raise CompactedTopic(
            f"{topic!r} is a compacted topic (cleanup.policy=compact): Kafka cannot delete its"
            " records by offset. Nothing was deleted."
        )
    wanted = [(topic, p) for p in partitions]
    low, high = await broker.watermarks(wanted)
    if any(tp not in low or tp not in high for tp in wanted):
        raise BrokerError(f"could not read the offsets of {topic!r}; nothing was deleted")
    targets = [TopicPartition(topic, p, high[(topic, p)]) for p in partitions]
    futures = broker.admin.delete_records(
        targets, request_timeout=broker.config.timeout, operation_timeout=broker.config.timeout
    )
    answers = await broker.gather(
        {tp.partition: f for tp, f in futures.items()}, f"DeleteRecords on {topic!r}"
    )
    failed = [a for a in answers.values() if isinstance(a, BrokerError)]
    after_low, _ = await broker.watermarks(wanted)
    result = PurgeResult(
        topic=topic,
        partitions=tuple(
            PurgedPartition(
                partition=p,
                low_before=low[(topic, p)],
                high_before=high[(topic, p)],
                low_after=after_low.get((topic, p)),
            )
            for p in partitions
        ),
        checked_at=datetime.now(UTC),
    )
    if failed:
        raise PartialPurge(f"{failed[0].message} ({len(failed)} partition(s) not purged)", result)
    return result


class PartialPurge(BrokerError):
    """Some partitions were purged and some not; ``result`` says which offsets moved."""

    def __init__(self, message: str, result: PurgeResult) -> None:
        super().__init__(message)
        self.result = result
