"""The Kafka half of the demo, on confluent-kafka: a keyed topic, a consumer group, a DLQ topic.

``user-events`` has 6 partitions and is keyed by user id, so one user's events
stay in order on one partition. The ``user-events-processor`` group commits
what it processed and copies records it cannot handle to ``user-events-dlq``,
alternating Spring's ``kafka_dlt-*`` headers and plain ``x-original-*``
headers, the two conventions a dashboard most often has to recognise.

Every confluent call blocks, so this side runs in its own threads, never on
the asyncio loop. librdkafka retries connections itself; its log lines and
errors go through a throttled logger instead of stderr.
"""

from __future__ import annotations

import logging
import random
import struct
import threading
import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from demo import payloads
from demo.common import Backoff, Pacer, Stats, Throttled
from demo.topology import (
    APP_ID,
    KAFKA_DLQ_PARTITIONS,
    KAFKA_USER_EVENT_PARTITIONS,
    USER_EVENT_KEYS,
    Names,
)

log = logging.getLogger("demo.kafka")
EXCEPTION_FQCN = f"{payloads.InvalidPayload.__module__}.{payloads.InvalidPayload.__qualname__}"
UNREACHABLE = {KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN, KafkaError._RESOLVE}
Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True)
class KafkaSettings:
    bootstrap_servers: str
    names: Names
    rate: float
    fail_share: float


class _RdkafkaLog(logging.Handler):
    """librdkafka's own log lines, at most one per kind per window."""

    def __init__(self, quiet: Throttled) -> None:
        super().__init__()
        self.quiet = quiet

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        facility = message.split(" ", 1)[0]  # "FAIL [thrd:...]: ... Connect to ... failed"
        if facility == "FAIL":
            return  # connection failures also reach error_cb, which says it once
        self.quiet.log(max(record.levelno, logging.INFO), facility, "%s", message)


class KafkaSide:
    """Creates the topics, then produces and consumes in two threads until ``stop``."""

    def __init__(self, settings: KafkaSettings, stats: Stats, stop: threading.Event) -> None:
        self.settings = settings
        self.names = settings.names
        self.stats = stats
        self.stop = stop
        self.quiet = Throttled(log)
        rd_logger = logging.getLogger("demo.kafka.librdkafka")
        rd_logger.propagate = False
        if not rd_logger.handlers:
            rd_logger.addHandler(_RdkafkaLog(self.quiet))
        self.common: dict[str, Any] = {
            "bootstrap.servers": settings.bootstrap_servers,
            "client.id": APP_ID,
            "logger": rd_logger,
            "error_cb": self._on_error,
        }

    def run(self) -> None:
        """Thread body: topics first (with backoff), then the producer and consumer threads."""
        if not self._ensure_topics():
            return
        workers = [
            threading.Thread(target=self._produce, name="kafka-producer", daemon=True),
            threading.Thread(target=self._consume, name="kafka-consumer", daemon=True),
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _on_error(self, error: KafkaError) -> None:
        if error.code() in UNREACHABLE:
            self.quiet.log(
                logging.ERROR,
                "unreachable",
                "Kafka at %s unreachable: %s",
                self.settings.bootstrap_servers,
                error.str(),
            )
        else:
            self.quiet.log(logging.ERROR, f"error-{error.code()}", "Kafka: %s", error.str())

    def _ensure_topics(self) -> bool:
        admin = AdminClient(self.common)
        wanted = {
            self.names.kafka_user_events: KAFKA_USER_EVENT_PARTITIONS,
            self.names.kafka_dlq: KAFKA_DLQ_PARTITIONS,
        }
        backoff = Backoff()
        while not self.stop.is_set():
            try:
                existing = admin.list_topics(timeout=3).topics
                missing = [
                    NewTopic(name, num_partitions=count, replication_factor=1)
                    for name, count in wanted.items()
                    if name not in existing
                ]
                for name, future in (admin.create_topics(missing) if missing else {}).items():
                    try:
                        future.result(timeout=10)
                    except KafkaException as exc:
                        if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                            raise
                    log.info("Kafka: created topic %s", name)
                for name, count in wanted.items():
                    found = existing.get(name)
                    if found is not None and len(found.partitions) != count:
                        log.warning(
                            "Kafka: %s has %d partitions, not %d",
                            name,
                            len(found.partitions),
                            count,
                        )
                log.info(
                    "Kafka ready: topics %s, group %s", ", ".join(wanted), self.names.kafka_group
                )
                return True
            except KafkaException as exc:
                delay = backoff.next()
                log.error(
                    "Kafka at %s: %s; retrying in %.0f s",
                    self.settings.bootstrap_servers,
                    exc.args[0].str(),
                    delay,
                )
                admin.poll(0)
                self.stop.wait(delay)
        return False

    def _produce(self) -> None:
        producer = Producer(
            {
                **self.common,
                "linger.ms": 20,
                "enable.idempotence": True,
                "message.timeout.ms": 30000,
            }
        )
        rng = random.Random()
        pacer = Pacer(self.settings.rate)
        while not self.stop.wait(pacer.delay()):
            event = rng.choice(USER_EVENT_KEYS)
            payload = payloads.user_event(rng, event, self.settings.fail_share)
            encoded = payloads.encode(payload, rng)
            headers: Headers = [
                ("content-type", encoded.content_type.encode()),
                ("event-type", event.encode()),
                ("trace-id", uuid.uuid4().hex[:16].encode()),
            ]
            try:
                producer.produce(
                    self.names.kafka_user_events,
                    encoded.body,
                    key=str(payload["user_id"]).encode(),
                    headers=headers,
                    on_delivery=self._delivered,
                )
            except BufferError:
                self.quiet.log(logging.WARNING, "buffer", "Kafka producer queue full; skipping")
            producer.poll(0)
        left = producer.flush(3)
        if left:
            log.warning("Kafka: %d records not delivered at shutdown", left)

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.stats.incr(
                "kafka_produced"
                if message.topic() == self.names.kafka_user_events
                else "kafka_dead_lettered"
            )
        else:
            self.stats.incr("kafka_delivery_failed")
            self.quiet.log(
                logging.ERROR,
                "delivery",
                "Kafka delivery to %s failed: %s",
                message.topic(),
                error.str(),
            )

    def _consume(self) -> None:
        consumer = Consumer(
            {
                **self.common,
                "group.id": self.names.kafka_group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        dlq = Producer({**self.common, "linger.ms": 5, "enable.idempotence": True})
        consumer.subscribe([self.names.kafka_user_events])
        failures = 0
        try:
            while not self.stop.is_set():
                message = consumer.poll(0.5)
                dlq.poll(0)
                if message is None:
                    continue
                error = message.error()
                if error is not None:
                    self.quiet.log(logging.WARNING, "consume", "Kafka consumer: %s", error.str())
                    continue
                try:
                    content_type = _text(dict(_headers(message)).get("content-type"))
                    payloads.check(payloads.decode(message.value() or b"", content_type))
                    self.stats.incr("kafka_processed")
                except payloads.InvalidPayload as exc:
                    failures += 1
                    self._dead_letter(dlq, message, exc, spring=failures % 2 == 1)
                    dlq.flush(5)  # the dead letter is safe before the offset moves past it
                consumer.commit(message=message, asynchronous=True)
        finally:
            dlq.flush(3)
            consumer.close()

    def _dead_letter(self, dlq: Producer, message: Message, exc: Exception, spring: bool) -> None:
        original = _headers(message)
        topic, partition, offset = message.topic() or "", message.partition(), message.offset()
        if spring:
            extra: Headers = [
                ("kafka_dlt-original-topic", topic.encode()),
                ("kafka_dlt-original-partition", struct.pack(">i", partition or 0)),
                ("kafka_dlt-original-offset", struct.pack(">q", offset or 0)),
                ("kafka_dlt-original-timestamp", struct.pack(">q", message.timestamp()[1])),
                ("kafka_dlt-original-consumer-group", self.names.kafka_group.encode()),
                ("kafka_dlt-exception-fqcn", EXCEPTION_FQCN.encode()),
                ("kafka_dlt-exception-message", str(exc).encode()),
            ]
        else:
            extra = [
                ("x-original-topic", topic.encode()),
                ("x-original-partition", str(partition).encode()),
                ("x-original-offset", str(offset).encode()),
                ("x-exception", f"{type(exc).__name__}: {exc}".encode()),
            ]
        try:
            dlq.produce(
                self.names.kafka_dlq,
                message.value(),
                key=message.key(),
                headers=original + extra,
                on_delivery=self._delivered,
            )
        except BufferError:
            self.quiet.log(logging.WARNING, "dlq-buffer", "Kafka DLQ producer queue full")


def _headers(message: Message) -> Headers:
    headers = message.headers()
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers or [])


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""
