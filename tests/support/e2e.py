"""Helpers of the end-to-end tests: a consumer that always fails, the collector as a process,
and scripts run in the database of the processes a test starts.

Holds no tests. :class:`Rejecting` consumes a RabbitMQ queue in a thread of its
own and rejects every delivery without requeueing it (the queue's dead-letter
exchange takes it), noting each message id and its ``x-mqboard-requeue-count``.
:class:`FailingKafka` does the same on Kafka the way a Spring listener with a
``DeadLetterPublishingRecoverer`` does: each record of the origin topic is
produced to the dead-letter topic with the original headers plus Spring's
``kafka_dlt-*`` headers.
"""

from __future__ import annotations

import asyncio
import struct
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aio_pika
from confluent_kafka import Consumer, Producer

from tests.conftest import KAFKA, PYTHON, ROOT
from tests.support import deadletters as h

REQUEUE_COUNT = "x-mqboard-requeue-count"


def start_collector(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``manage.py collect``, capturing only, as the Procfile's collector runs it."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            [PYTHON, "manage.py", "collect", "--only", "capture", "--interval", "1"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def publish(vhost: str, exchange: str, routing_key: str, message_id: str) -> None:
    """One JSON message with this id, published with a confirm."""

    async def go() -> None:
        connection = await aio_pika.connect(
            host="127.0.0.1", login="guest", password="guest", virtualhost=vhost
        )
        try:
            channel = await connection.channel(publisher_confirms=True)
            target = await channel.get_exchange(exchange)
            body = aio_pika.Message(
                b'{"order": 1}', message_id=message_id, content_type="application/json"
            )
            await target.publish(body, routing_key=routing_key)
        finally:
            await connection.close()

    asyncio.run(go())


def depth(vhost: str, queue: str) -> int:
    """Ready messages in ``queue``, read in a thread of its own (callable beside Playwright)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, h.depth(vhost, queue)).result()


def _count(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    return int(value)


@dataclass
class Rejecting:
    """Rejects (``requeue=False``) every message of ``queue``; ``seen``: (message id, count)."""

    vhost: str
    queue: str
    seen: list[tuple[str, int | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Rejecting:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise AssertionError(f"could not consume {self.queue}")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    async def _run(self) -> None:
        connection = await aio_pika.connect(
            host="127.0.0.1", login="guest", password="guest", virtualhost=self.vhost
        )
        try:
            channel = await connection.channel()
            queue = await channel.get_queue(self.queue)

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                count = _count((message.headers or {}).get(REQUEUE_COUNT))
                self.seen.append((message.message_id or "", count))
                await message.reject(requeue=False)

            await queue.consume(on_message)
            self._ready.set()
            await asyncio.to_thread(self._stop.wait)
        finally:
            await connection.close()


def spring_headers(record: Any, error: str) -> list[tuple[str, str | bytes | None]]:
    """The original headers and Spring's dead-letter headers for a failed ``record``."""
    kept = [(k, bytes(v or b"")) for k, v in (record.headers() or [])]
    return [
        *kept,
        ("kafka_dlt-original-topic", record.topic().encode()),
        ("kafka_dlt-original-partition", struct.pack(">i", record.partition())),
        ("kafka_dlt-original-offset", struct.pack(">q", record.offset())),
        ("kafka_dlt-exception-fqcn", b"com.acme.OrderRejected"),
        ("kafka_dlt-exception-message", error.encode()),
    ]


@dataclass
class FailingKafka:
    """A listener on ``topic`` that fails on every record and dead-letters it to ``dlt``;
    ``seen``: (key, requeue count) of each record it consumed."""

    topic: str
    dlt: str
    group: str
    seen: list[tuple[str, int | None]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> FailingKafka:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise AssertionError(f"could not consume {self.topic}")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": KAFKA,
                "group.id": self.group,
                "auto.offset.reset": "earliest",
                "enable.auto.commit": True,
            }
        )
        producer = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True})
        try:
            consumer.subscribe([self.topic], on_assign=lambda *_: self._ready.set())
            while not self._stop.is_set():
                record = consumer.poll(0.2)
                if record is None or record.error() is not None:
                    continue
                headers = dict(record.headers() or [])
                key = (record.key() or b"").decode()
                self.seen.append((key, _count(headers.get(REQUEUE_COUNT))))
                producer.produce(
                    self.dlt,
                    key=record.key(),
                    value=record.value(),
                    headers=spring_headers(record, f"order {key} rejected: no stock"),
                )
                producer.flush(10)
        finally:
            consumer.close()
