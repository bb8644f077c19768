"""Capture of one managed Kafka DLQ topic into a sink, offsets committed only after the commit.

Features: one consumer per managed topic, in the capture group (by default
``mqboard-capture-<cluster slug>``) with ``enable.auto.commit=false``,
subscribed to the topic. Each ``consume()`` batch is handed to the sink; once
``sink.store`` has returned (the database commit), the offsets of exactly the
stored records (highest stored offset + 1 per partition) are committed
synchronously, and a sink that asks (``PositionSink``) is told them. Rows are
unique on ``topic:partition:offset``, so a batch read
again after a crash between the database commit and the offset commit is
recognised and stored once.

Every librdkafka call blocks, so each engine owns one worker thread that does
all of its consumer calls; the event loop only awaits them.

The consumer uses static group membership (``group.instance.id``, one per
topic and host): a collector killed and restarted on the same host takes its
partitions back at once instead of waiting out the dead member's session.
Two collectors on different hosts share the partitions; two on one host fence
each other (the fenced one fails and is restarted with a backoff).

Connection settings: whatever the cluster's librdkafka configuration says
(``bootstrap.servers``, security options), plus the consumer settings here.

Limitations: a record larger than ``max_message_bytes`` stops the capture of
its topic (:class:`OversizeMessage`) after everything before it is stored; the
offset is not committed past it. A commit refused because of a rebalance is
logged, not fatal: the partition's next owner reads the uncommitted records
again and the capture key makes that harmless.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

from confluent_kafka import (
    TIMESTAMP_LOG_APPEND_TIME,
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from brokers.base import BrokerError, BrokerUnavailable
from brokers.base.deadletters import (
    DEFAULT_MAX_MESSAGE_BYTES,
    CapturedLetter,
    CaptureSink,
    PositionSink,
    too_big,
)
from brokers.decode.metadata import kafka_failure_info
from brokers.decode.values import kafka_headers_to_json

log = logging.getLogger(__name__)
T = TypeVar("T")

CAPTURE_CONSUMER_CONF: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "earliest",
    "enable.partition.eof": False,
    # Records of aborted transactions are not dead letters anybody sent.
    "isolation.level": "read_committed",
    "session.timeout.ms": 10_000,
    "heartbeat.interval.ms": 2_000,
}


def capture_key(topic: str, partition: int, offset: int) -> str:
    return f"{topic}:{partition}:{offset}"


def letter_of(message: Message) -> CapturedLetter:
    topic, partition, offset = message.topic() or "", message.partition(), message.offset()
    kind, stamp = message.timestamp()
    moment = None
    if kind != TIMESTAMP_NOT_AVAILABLE and stamp is not None and stamp >= 0:
        moment = datetime.fromtimestamp(stamp / 1000, tz=UTC)
    found = message.headers() or []
    pairs = list(found.items()) if isinstance(found, dict) else list(found)
    raw_headers: list[tuple[str, bytes | None]] = []
    for name, raw in pairs:
        raw_headers.append((str(name), raw.encode() if isinstance(raw, str) else raw))
    value, key = message.value(), message.key()
    properties: dict[str, Any] = {
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": moment.isoformat() if moment is not None else None,
        "timestamp_type": "log_append" if kind == TIMESTAMP_LOG_APPEND_TIME else "create",
    }
    if value is None:
        properties["value_null"] = True  # a tombstone; the body is stored empty
    return CapturedLetter(
        dlq=topic,
        vhost="",
        capture_key=capture_key(topic, partition or 0, offset or 0),
        info=kafka_failure_info(raw_headers, dlq=topic, timestamp=moment),
        headers=kafka_headers_to_json(raw_headers),
        properties=properties,
        body=bytes(value or b""),
        key=bytes(key) if key is not None else None,
        timestamp=moment,
    )


class KafkaCapture:
    def __init__(
        self,
        client_config: dict[str, Any],
        topic: str,
        sink: CaptureSink,
        *,
        group_id: str,
        batch_size: int = 500,
        poll_timeout: float = 0.5,
        timeout: float = 5.0,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        instance_id: str | None = None,
        ack_delay: float = 0.0,
    ) -> None:
        self.ack_delay = ack_delay  # fault tests widen the commit-to-commit window with it
        self.topic, self.sink, self.group_id = topic, sink, group_id
        self.batch_size = max(1, batch_size)
        self.poll_timeout = poll_timeout
        self.timeout = timeout
        self.max_message_bytes = max_message_bytes
        self.conf = {
            **client_config,
            **CAPTURE_CONSUMER_CONF,
            "group.id": group_id,
            "group.instance.id": instance_id or f"{group_id}-{topic}-{socket.gethostname()}",
        }
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"capture-{topic}"[:40]
        )

    async def _call(self, call: Callable[[], T], what: str, seconds: float | None = None) -> T:
        loop = asyncio.get_running_loop()
        limit = (seconds if seconds is not None else self.timeout) + 1
        try:
            async with asyncio.timeout(limit):
                return await loop.run_in_executor(self._thread, call)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            text = error.str() if isinstance(error, KafkaError) else str(exc)
            raise BrokerError(f"topic {self.topic!r}: {what} failed: {text}") from None
        except TimeoutError:
            raise BrokerUnavailable(
                f"topic {self.topic!r}: {what} did not finish within {limit:g} s"
            ) from None

    async def run(self, stop: asyncio.Event) -> None:
        """Capture until ``stop`` is set; raise a BrokerError when Kafka fails."""
        consumer = await self._call(lambda: Consumer(self.conf), "creating the consumer")
        try:
            await self._call(lambda: consumer.subscribe([self.topic]), "subscribing")
            await self.sink.begin()
            while not stop.is_set():
                messages = await self._call(
                    lambda: consumer.consume(self.batch_size, self.poll_timeout),
                    "reading",
                    seconds=self.poll_timeout + self.timeout,
                )
                records = [m for m in messages if not self._failed(m)]
                if records:
                    await self._store_and_commit(consumer, records)
        finally:
            # No commit happens here: auto-commit is off.
            try:
                await self._call(consumer.close, "closing the consumer")
            except BrokerError as exc:
                log.info("%s", exc.message)
            self._thread.shutdown(wait=False)

    def _failed(self, message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        # A fatal consumer error (e.g. a static member fenced after its coordinator
        # moved) arrives as a _FATAL event whose fatal() is False; the consumer is
        # unusable after it either way, so the engine stops and is started afresh.
        if error.fatal() or error.code() == KafkaError._FATAL:
            raise BrokerError(f"topic {self.topic!r}: {error.str()}", permanent=True)
        log.warning("topic %r: %s", self.topic, error.str())
        return True

    async def _store_and_commit(self, consumer: Consumer, records: list[Message]) -> None:
        oversize = next(
            (i for i, m in enumerate(records) if len(m.value() or b"") > self.max_message_bytes),
            None,
        )
        storable = records if oversize is None else records[:oversize]
        if storable:
            letters = await asyncio.to_thread(lambda: [letter_of(m) for m in storable])
            result = await self.sink.store(letters)
            if self.ack_delay:
                await asyncio.sleep(self.ack_delay)
            # Only now, after the database commit: the offsets of what was stored.
            highest: dict[tuple[str, int], int] = {}
            for m in storable:
                tp = (m.topic() or "", m.partition() or 0)
                highest[tp] = max(highest.get(tp, -1), m.offset() or 0)
            offsets = [TopicPartition(t, p, o + 1) for (t, p), o in highest.items()]
            try:
                await self._call(
                    lambda: consumer.commit(offsets=offsets, asynchronous=False), "committing"
                )
            except BrokerError as exc:
                # Typically a rebalance: whoever owns the partition next reads these
                # records again, and they are recognised by their capture key.
                log.warning("%s; the records will be read again", exc.message)
            else:
                if isinstance(self.sink, PositionSink):
                    await self.sink.committed({p: o + 1 for (_, p), o in highest.items()})
                await self.sink.acknowledged(result)
        if oversize is not None:
            size = len(records[oversize].value() or b"")
            raise too_big(self.topic, size, self.max_message_bytes)
