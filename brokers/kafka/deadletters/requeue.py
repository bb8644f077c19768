"""Sending dead letters back to a Kafka topic: one record, or a batch, with delivery reports.

One record: ``requeue_kafka`` checks that the topic exists
(``allow.auto.create.topics`` is off in the client config), then produces with
an idempotent producer in a worker thread and awaits the delivery report.

A batch: ``KafkaBatchSender`` keeps one idempotent producer, checks each topic
once per batch (never creating it) and produces the batch with one flush.
Each letter gets an :class:`~brokers.base.deadletters.Outcome`: ``SENT``
(delivery report without error), ``UNROUTABLE`` (missing topic) or
``UNKNOWN`` (no delivery report in time: it may or may not have arrived).
Callers resend ``UNKNOWN`` letters; a duplicate has the same key and value.

Both keep the record's key and headers and set ``x-mqboard-requeue-count`` to
one more than the value the record carried. A null key or value is produced as
null (a null value is a tombstone on a compacted topic, an empty one is not);
headers keep their order and repeated keys. A keyed record is placed by the
Java-compatible partitioner (``murmur2_random``: where Java and Spring
producers put the same key); a keyless one goes back to its original
partition while the topic has it.

Settings: the cluster's ``timeout`` bounds every call. Limitations: a batch is
all in memory (the caller sizes it).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer
from confluent_kafka.admin import AdminClient

from brokers.base import BrokerError, BrokerTimeout, BrokerUnavailable, validate
from brokers.base.deadletters import (
    REQUEUE_COUNT_HEADER,
    SENT,
    Outcome,
    Result,
    Unroutable,
    next_count,
)
from brokers.decode.values import kafka_headers_from_json
from brokers.kafka.clients import JAVA_PARTITIONER

ANY_PARTITION = -1  # librdkafka's RD_KAFKA_PARTITION_UA: the configured partitioner chooses


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
    validate.kafka_record(
        letter.topic, letter.key, letter.value, letter.headers
    )  # before librdkafka
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _produce, client_config, letter, seconds)


def _unsendable_record(letter: KafkaLetter) -> Outcome | None:
    """UNROUTABLE when librdkafka could not take the record's strings (see base.validate)."""
    try:
        validate.kafka_record(letter.topic, letter.key, letter.value, letter.headers)
    except validate.InvalidValue as exc:
        return Outcome(Result.UNROUTABLE, f"not sent: {exc.message}")
    return None


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class KafkaBatchSender:
    """Produces batches with one idempotent producer. Blocking: call from a worker thread."""

    TOPIC_CACHE_SECONDS = 10.0

    def __init__(self, client_config: dict[str, Any], timeout: float) -> None:
        self.timeout = timeout
        self.producer = Producer(
            {
                **client_config,
                **JAVA_PARTITIONER,
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": int(max(timeout, 1) * 1000),
            }
        )
        # topic -> (its partition count, 0 when it does not exist; when it was read)
        self.topics: dict[str, tuple[int, float]] = {}

    def _partitions(self, topic: str) -> int:
        """How many partitions the topic has (0: it does not exist), cached a few seconds."""
        known = self.topics.get(topic)
        if known is not None and time.monotonic() - known[1] < self.TOPIC_CACHE_SECONDS:
            return known[0]
        try:
            meta = self.producer.list_topics(topic=topic, timeout=self.timeout)
        except KafkaException as exc:
            raise BrokerUnavailable(f"Kafka did not answer: {exc}") from None
        found = meta.topics.get(topic)
        count = len(found.partitions) if found is not None and found.error is None else 0
        self.topics[topic] = (count, time.monotonic())
        return count

    def send(self, letters: Sequence[KafkaLetter]) -> list[Outcome]:
        """Produce every letter and wait for their delivery reports; one outcome per letter."""
        outcomes = [_unsendable_record(letter) for letter in letters]
        topics = {le.topic for le, o in zip(letters, outcomes, strict=True) if o is None}
        try:
            counts = {t: self._partitions(t) for t in topics}
        except BrokerUnavailable as exc:
            return [o or Outcome(Result.UNKNOWN, f"not sent: {exc.message}") for o in outcomes]

        def report(i: int, topic: str) -> Any:
            def on_delivery(error: KafkaError | None, _message: Any) -> None:
                if error is None:
                    outcomes[i] = SENT
                elif error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
                    self.topics.pop(topic, None)
                    outcomes[i] = Outcome(Result.UNROUTABLE, f"unknown topic {topic!r}")
                else:
                    outcomes[i] = Outcome(Result.UNKNOWN, f"topic {topic!r}: {error.str()}")

            return on_delivery

        for i, letter in enumerate(letters):
            if outcomes[i] is not None:
                continue
            if not counts[letter.topic]:
                outcomes[i] = Outcome(Result.UNROUTABLE, f"unknown topic {letter.topic!r}")
                continue
            partition = letter.partition_in(counts[letter.topic])
            while True:
                try:
                    self.producer.produce(
                        letter.topic,
                        letter.value,
                        key=letter.key,
                        headers=letter.headers,
                        on_delivery=report(i, letter.topic),
                        partition=partition,
                    )
                    break
                except BufferError:
                    self.producer.poll(0.05)  # the local queue is full: let it drain
        self.producer.flush(self.timeout + 1)
        return [
            o or Outcome(Result.UNKNOWN, f"no delivery report within {self.timeout:g} s")
            for o in outcomes
        ]

    def close(self) -> None:
        self.producer.flush(self.timeout)
