"""Kafka tail: read a topic from its end with a consumer group that never commits.

Features: :func:`open_kafka_tap` (the Kafka kind's tap, :class:`TopicTap`)
creates one librdkafka consumer per tail with a unique ``group.id``
(``mqboard-tail-<random>``), ``enable.auto.commit`` and
``enable.auto.offset.store`` off, and ``assign()`` s every partition at its end
offset: it never joins the group, never commits and never creates the topic
(``allow.auto.create.topics`` is off, a missing topic is NotFound). Each read
takes what librdkafka has fetched (in batches of up to :data:`BATCH` records,
at most :data:`READ_MOST` batches) in its own worker thread (librdkafka calls
block; the event loop never waits on one); it shows at most ``rate`` records
per second, the newest record of a read when the rate allows one, and counts
every other record it read as skipped, exactly.

Limitations: partitions added after the tail started are not followed. Every
record is fetched (librdkafka's fetch is cheap, and counting needs it), but
only the shown ones are decoded, each from at most 64 KiB of its value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_END, Consumer, KafkaError, KafkaException, TopicPartition

from brokers.base import BrokerUnavailable, NotFound
from brokers.base.tail import (
    RateLimiter,
    TailBatch,
    TailMessage,
    TailOptions,
    TailSource,
    decode_for_tail,
    header_rows,
)
from brokers.kafka.adapter import kafka_adapter

if TYPE_CHECKING:
    from brokers.base import Broker
    from brokers.kafka import KafkaBroker

BATCH = 500  # records per consume() call
POLL_SECONDS = 0.025  # longest a consume() call waits: bounds the added latency
READ_MOST = 20  # consume() calls per read: what librdkafka holds, up to 10,000 records

TAIL_CONSUMER_CONF: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "auto.offset.reset": "latest",
    "enable.partition.eof": False,
    "fetch.wait.max.ms": 100,
    # librdkafka prefetches up to 64 MiB per consumer by default; a tail shows 20/s.
    "queued.max.messages.kbytes": 8192,
    "queued.min.messages": 1000,
    # Once that prefetch holds more than queued.min.messages, librdkafka waits
    # this long (default 1 s) before it fetches the partition again: on a busy
    # topic every record then reached the tail up to a second late (median 1 s
    # at 10,000 records/s). The tail empties the prefetch within milliseconds.
    "fetch.queue.backoff.ms": 10,
}

COUNTING = (
    "The tail reads every record from the end of each partition and shows at most the"
    " rate shown; skipped counts the records it read but did not show (exact)."
)


class KafkaTap:
    counting = COUNTING

    def __init__(self, broker: KafkaBroker, topic: str, *, rate: int, preview: int) -> None:
        self.broker, self.topic, self.preview = broker, topic, preview
        self.limiter = RateLimiter(rate)
        self.notes: tuple[str, ...] = ()
        self.group_id = f"mqboard-tail-{uuid.uuid4().hex[:16]}"
        self.partitions: tuple[int, ...] = ()
        self._consumer: Consumer | None = None
        # One thread per tail: its consume() calls wait up to POLL_SECONDS and
        # must not hold up the loop's shared executor.
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mqb-tail")
        self._what = f"tail of topic {topic!r}"

    async def open(self) -> None:
        conf = self.broker.client_config()
        conf.update(TAIL_CONSUMER_CONF)
        conf["group.id"] = self.group_id
        try:
            self._consumer = await self._call(lambda: Consumer(conf))
            consumer = self._consumer
            timeout = self.broker.config.timeout
            metadata = await self._call(lambda: consumer.list_topics(self.topic, timeout=timeout))
            found = metadata.topics.get(self.topic)
            if found is None or found.error is not None or not found.partitions:
                raise NotFound(f"topic {self.topic!r} does not exist")
            self.partitions = tuple(sorted(found.partitions))
            assignment = [TopicPartition(self.topic, p, OFFSET_END) for p in self.partitions]
            await self._call(lambda: consumer.assign(assignment))
        except BaseException:
            await self.close()
            raise

    async def _call(self, call: Any) -> Any:
        return await self.broker.blocking(call, what=self._what, executor=self._thread)

    async def batches(self) -> AsyncGenerator[TailBatch, None]:
        consumer = self._consumer
        if consumer is None:
            raise BrokerUnavailable(f"{self._what}: not open")
        while True:
            records = await self._call(lambda: _read_all(consumer))
            newest = None
            read = 0
            for record in records:
                error = record.error()
                if error is not None:
                    if error.fatal() or error.code() in (
                        KafkaError.UNKNOWN_TOPIC_OR_PART,
                        KafkaError._UNKNOWN_TOPIC,
                    ):
                        raise self.broker.translate(error, self._what)
                    continue  # transient; librdkafka retries by itself
                newest = record
                read += 1
            if not read:
                continue
            # All of one read arrive within the limiter's spacing, so it admits
            # at most one of them: the newest, which is the freshest after a
            # stall (the oldest of a backlog would be shown late).
            if self.limiter.allow():
                yield TailBatch((self._message(newest),), read - 1)
            else:
                yield TailBatch((), read)

    def _message(self, record: Any) -> TailMessage:
        value = record.value()
        key = record.key()
        headers = record.headers() or []
        kind, millis = record.timestamp()
        timestamp = datetime.fromtimestamp(millis / 1000, UTC) if kind and millis >= 0 else None
        return TailMessage(
            received_at=datetime.now(UTC),
            size=len(value) if value is not None else 0,
            body=decode_for_tail(value, headers=headers, preview=self.preview),
            headers=header_rows(headers, self.preview),
            partition=record.partition(),
            offset=record.offset(),
            timestamp=timestamp,
            key=decode_for_tail(key, preview=min(self.preview, 256)),
        )

    async def close(self) -> None:
        """Close the consumer (no commit: auto-commit is off) and its thread."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            loop = asyncio.get_running_loop()
            with contextlib.suppress(KafkaException, RuntimeError, TimeoutError):
                async with asyncio.timeout(self.broker.config.timeout + 1):
                    await loop.run_in_executor(self._thread, consumer.close)
        self._thread.shutdown(wait=False)


def _read_all(consumer: Consumer) -> list[Any]:
    """What librdkafka has fetched (waiting up to POLL_SECONDS for the first record)."""
    records = consumer.consume(BATCH, POLL_SECONDS)
    for _ in range(READ_MOST - 1):
        if len(records) < BATCH:
            break
        records.extend(consumer.consume(BATCH, 0))
    return records


async def open_kafka_tap(
    broker: KafkaBroker, topic: str, *, rate: int = 20, preview: int = 1024
) -> KafkaTap:
    """An open tap at the end of ``topic``; raises NotFound or another BrokerError."""
    tap = KafkaTap(broker, topic, rate=rate, preview=preview)
    await tap.open()
    return tap


@dataclass(frozen=True)
class TopicTap:
    """The Kafka kind's tap capability: a tail on one topic (``vhost`` is unused)."""

    entity: str = "topic"

    async def open(
        self, broker: Broker, name: str, *, vhost: str, options: TailOptions
    ) -> TailSource:
        return await open_kafka_tap(
            kafka_adapter(broker), name, rate=options.rate, preview=options.preview
        )
