"""Sending dead letters back to a Kafka topic: one record or a batch alike, with delivery reports.

:func:`outgoing` turns a stored letter (and an optional edit) into the
:class:`KafkaLetter` to produce: to its origin topic (a keyless record back to
its original partition) or to a topic the user picked.

:class:`KafkaSender` is the one sender, for a single requeue and a bulk job
alike. It keeps one idempotent producer (made and used in a worker thread:
librdkafka blocks), checks each topic once per batch (never creating it:
``allow.auto.create.topics`` is off in the client config) and produces the
batch with one flush.
Each letter gets an :class:`~brokers.base.deadletters.Outcome`: ``SENT``
(delivery report without error), ``UNROUTABLE`` (missing topic) or
``UNKNOWN`` (no delivery report in time: it may or may not have arrived).
Callers resend ``UNKNOWN`` letters; a duplicate has the same key and value.

It keeps the record's key and headers and set ``x-mqboard-requeue-count`` to
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

from brokers.base import BrokerUnavailable, validate
from brokers.base.deadletters import (
    REQUEUE_COUNT_HEADER,
    SENT,
    Edit,
    InvalidLetter,
    Outcome,
    OutgoingLetter,
    RequeueTarget,
    Result,
    StoredLetter,
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


class BlockingSender:
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
        # outgoing() checked every string librdkafka must take.
        outcomes: list[Outcome | None] = [None] * len(letters)
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


class KafkaSender:
    """The :class:`~brokers.base.deadletters.LetterSender` of a Kafka cluster."""

    def __init__(self, client_config: dict[str, Any], timeout: float) -> None:
        self.client_config, self.timeout = client_config, timeout
        self.blocking: BlockingSender | None = None

    async def send(self, outgoing: Sequence[OutgoingLetter]) -> list[Outcome]:
        letters = [kafka_letter(o) for o in outgoing]
        if self.blocking is None:
            self.blocking = await asyncio.to_thread(
                BlockingSender, self.client_config, self.timeout
            )
        return await asyncio.to_thread(self.blocking.send, letters)

    async def close(self) -> None:
        blocking, self.blocking = self.blocking, None
        if blocking is not None:
            await asyncio.to_thread(blocking.close)


def kafka_letter(outgoing: OutgoingLetter) -> KafkaLetter:
    if not isinstance(outgoing.message, KafkaLetter):
        raise TypeError(f"not a Kafka letter: {type(outgoing.message).__name__}")
    return outgoing.message


def value_is_null(letter: StoredLetter) -> bool:
    """A record captured with a null value (stored as an empty body plus this flag)."""
    return letter.properties.get("value_null") is True


def outgoing(
    letter: StoredLetter, target: RequeueTarget | None, edit: Edit | None
) -> OutgoingLetter:
    """What to produce for a stored letter: its key and value as captured (null stays null)
    unless the edit replaces them; a keyless record back to its original partition when
    it goes back to its origin topic."""
    topic = (target.topic if target is not None else None) or letter.origin_topic
    if not topic:
        raise InvalidLetter("unknown origin: choose a target topic")
    validate.kafka_topic(topic)
    null = value_is_null(letter)
    body = edit.body if edit is not None else None
    # The page shows a null value as an empty body: sending that back unchanged is not an edit.
    edited = body is not None and not (null and body == b"")
    value = body if edited else None if null else letter.body
    headers = edit.headers if edit is not None and edit.headers is not None else letter.headers
    original = letter.origin_partition if topic == letter.origin_topic else None
    record = kafka_record(topic, letter.key, value, headers, partition=original)
    validate.kafka_record(record.topic, record.key, record.value, record.headers)
    return OutgoingLetter(address="", destination={"topic": topic}, where=topic, message=record)
