"""Fixtures and helpers shared by the Kafka tests: real topics and groups, cleaned up.

Imported by the ``test_kafka_*`` modules; it holds no tests itself. Every name
is unique per run (``unique_name``), and everything created is deleted at the
end of the test that made it.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from tests.conftest import KAFKA
from tests.settings import RUN_ID

COORDINATOR_NOT_READY = {
    KafkaError.NOT_COORDINATOR,
    KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
    KafkaError.COORDINATOR_NOT_AVAILABLE,
}

SLUG = "test-kafka"


class KafkaKit:
    """Creates topics and groups for one test and deletes them afterwards."""

    def __init__(self) -> None:
        self.admin = AdminClient({"bootstrap.servers": KAFKA})
        self.topics: list[str] = []
        self.groups: list[str] = []
        self._producer: Producer | None = None

    def name(self, suffix: str = "") -> str:
        return f"mqb-test-{RUN_ID}-{uuid.uuid4().hex[:8]}{suffix}"

    def topic(
        self, name: str | None = None, partitions: int = 1, config: dict[str, str] | None = None
    ) -> str:
        name = name or self.name()
        futures = self.admin.create_topics(
            [NewTopic(name, partitions, 1, config=config or {})], request_timeout=15
        )
        futures[name].result()
        self.topics.append(name)
        self._wait_for_leaders(name, partitions)
        return name

    def _wait_for_leaders(self, name: str, partitions: int) -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            topic = self.admin.list_topics(timeout=5).topics.get(name)
            if (
                topic
                and len(topic.partitions) == partitions
                and all(p.leader >= 0 for p in topic.partitions.values())
            ):
                return
            time.sleep(0.1)
        raise AssertionError(f"topic {name} has no leaders after 15 s")

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(
                {"bootstrap.servers": KAFKA, "linger.ms": 5, "message.max.bytes": 2_000_000}
            )
        return self._producer

    def produce(self, topic: str, *records: dict[str, Any]) -> None:
        """Each record: value, key, partition, headers, timestamp (ms), as produce() takes them."""
        errors: list[Any] = []
        for record in records:
            self.producer.produce(
                topic, on_delivery=lambda e, m: errors.append(e) if e else None, **record
            )
        assert self.producer.flush(15) == 0
        assert not errors, errors

    def fill(self, topic: str, count: int, partition: int = 0, prefix: str = "m") -> None:
        self.produce(
            topic,
            *(
                {"value": f"{prefix}-{i}".encode(), "key": f"k{i}".encode(), "partition": partition}
                for i in range(count)
            ),
        )

    def commit(self, group: str, offsets: dict[tuple[str, int], int]) -> str:
        """Commit offsets for ``group`` without joining it (an Empty group with commits)."""
        consumer = Consumer(
            {"bootstrap.servers": KAFKA, "group.id": group, "enable.auto.commit": False}
        )
        # Right after a broker starts, group coordinators may still be loading
        # (NOT_COORDINATOR, COORDINATOR_LOAD_IN_PROGRESS): those are retriable.
        deadline = time.monotonic() + 30
        try:
            while True:
                try:
                    consumer.commit(
                        offsets=[TopicPartition(t, p, o) for (t, p), o in offsets.items()],
                        asynchronous=False,
                    )
                    break
                except KafkaException as exc:
                    error = exc.args[0]
                    loading = error.code() in COORDINATOR_NOT_READY or error.retriable()
                    if not loading or time.monotonic() > deadline:
                        raise
                    time.sleep(0.5)
        finally:
            consumer.close()
        return self.track_group(group)

    def track_group(self, group: str) -> str:
        if group not in self.groups:
            self.groups.append(group)
        return group

    def cleanup(self) -> None:
        # A group whose last member just left may still be rebalancing for a
        # moment ("non-empty group"): retry those briefly.
        pending = list(dict.fromkeys(self.groups))
        deadline = time.monotonic() + 10
        while pending and time.monotonic() < deadline:
            futures = self.admin.delete_consumer_groups(pending, request_timeout=10)
            retry = []
            for group, future in futures.items():
                try:
                    future.result()
                except KafkaException as exc:
                    if exc.args[0].code() == KafkaError.NON_EMPTY_GROUP:
                        retry.append(group)
            pending = retry
            if pending:
                time.sleep(0.3)
        if self.topics:
            for future in self.admin.delete_topics(self.topics, operation_timeout=15).values():
                with contextlib.suppress(KafkaException):
                    future.result()


@pytest.fixture
def kit(kafka_config) -> Iterator[KafkaKit]:
    kit = KafkaKit()
    try:
        yield kit
    finally:
        kit.cleanup()


@pytest.fixture
def kafka_only(use_clusters, kafka_config):
    """The dashboard watching only the test Kafka (slug ``test-kafka``)."""
    use_clusters(kafka_config)
    return kafka_config


class LiveConsumer:
    """A subscribed consumer that stays in its group until stopped (an active group)."""

    def __init__(self, group: str, topic: str) -> None:
        self.consumer = Consumer(
            {
                "bootstrap.servers": KAFKA,
                "group.id": group,
                "client.id": "live-consumer-test",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        self.consumer.subscribe([topic])
        self.assigned = False

    def wait_until_assigned(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.consumer.assignment():
            self.consumer.poll(0.2)
        assert self.consumer.assignment(), "the consumer got no assignment"
        self.assigned = True

    def close(self) -> None:
        self.consumer.close()
