"""Long-lived librdkafka consumers and producer, one set per process and cluster.

Creating a librdkafka client costs milliseconds and its first request another
connection and metadata round trip, so browsing reuses a small pool of
assign-only consumers and producing reuses one producer. These are plain
threads-and-sockets objects, not tied to an event loop, so they are shared by
every adapter of the same cluster configuration in the process.

Browse consumers never commit and never join their group: ``group.id`` is a
throwaway (librdkafka requires one), ``enable.auto.commit`` is off, and reads
use ``assign()``, never ``subscribe()``. ``enable.partition.eof`` tells a read
that it reached the end of a partition. A short ``fetch.wait.max.ms`` keeps a
reassigned consumer from waiting out a long poll left over from its last read.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer

from brokers.base import ClusterConfig

log = logging.getLogger(__name__)

ConfFactory = Callable[[], dict[str, Any]]

BROWSE_CONSUMER_CONF: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    # An offset below the log start (deleted by retention) reads from the oldest kept.
    "auto.offset.reset": "earliest",
    "fetch.wait.max.ms": 20,
    # librdkafka prefetches up to 100,000 messages per partition by default;
    # a page needs a few hundred.
    "queued.min.messages": 1000,
    # Once that prefetch is full, librdkafka waits this long (default 1 s)
    # before fetching the partition again, even after a reassignment
    # (measured on a 1,000,000-record topic: 1 s, 13 ms and 4 ms per page at
    # the default, 10 and 1).
    "fetch.queue.backoff.ms": 1,
    "max.partition.fetch.bytes": 256 * 1024,
    "fetch.max.bytes": 8 * 1024 * 1024,
}

# Java's and Spring's producers put a keyed record on murmur2(key) % partitions;
# librdkafka's default (consistent_random, CRC32) would put the same key
# elsewhere, breaking per-key order for every other producer of the topic.
# Every producer of the dashboard (produce form, requeue, bulk requeue) uses it.
JAVA_PARTITIONER: dict[str, Any] = {"partitioner": "murmur2_random"}

PRODUCER_CONF: dict[str, Any] = {
    **JAVA_PARTITIONER,
    "acks": "all",
    "linger.ms": 0,
    # Let the broker (message.max.bytes, max.message.bytes) be the judge of size.
    "message.max.bytes": 16 * 1024 * 1024,
}

_pool_size = 2


def set_pool_size(size: int) -> None:
    """How many idle browse consumers each cluster keeps (extra ones are closed)."""
    global _pool_size
    _pool_size = max(0, size)


class ClientSet:
    def __init__(self, conf_factory: ConfFactory) -> None:
        self._conf_factory = conf_factory
        self._lock = threading.Lock()
        self._idle: list[Consumer] = []
        self._producer: Producer | None = None
        self.created = 0

    def consumer_conf(self) -> dict[str, Any]:
        conf = self._conf_factory()
        conf.update(BROWSE_CONSUMER_CONF)
        conf["group.id"] = f"mqboard-browse-{uuid.uuid4().hex[:12]}"
        return conf

    @contextmanager
    def consumer(self) -> Iterator[Consumer]:
        """An idle browse consumer (or a new one); unassigned and pooled again afterwards.

        A consumer whose read failed is closed rather than reused.
        """
        with self._lock:
            consumer = self._idle.pop() if self._idle else None
        if consumer is None:
            consumer = Consumer(self.consumer_conf())
            self.created += 1
        healthy = False
        try:
            yield consumer
            healthy = True
        finally:
            try:
                consumer.unassign()
            except (KafkaException, RuntimeError):
                healthy = False
            with self._lock:
                keep = healthy and len(self._idle) < _pool_size
                if keep:
                    self._idle.append(consumer)
            if not keep:
                _close(consumer)

    def producer(self) -> Producer:
        with self._lock:
            if self._producer is None:
                conf = self._conf_factory()
                conf.update(PRODUCER_CONF)
                conf["message.timeout.ms"] = int(conf.get("socket.timeout.ms", 5000))
                self._producer = Producer(conf)
            return self._producer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
            producer, self._producer = self._producer, None
        for consumer in idle:
            _close(consumer)
        if producer is not None:
            producer.flush(1)


def _close(consumer: Consumer) -> None:
    try:
        consumer.close()
    except (KafkaException, RuntimeError) as exc:
        log.debug("closing a browse consumer failed: %s", exc)


_sets: dict[tuple[object, ...], ClientSet] = {}
_sets_lock = threading.Lock()


def _fingerprint(config: ClusterConfig) -> tuple[object, ...]:
    return (
        config.slug,
        config.bootstrap_servers,
        config.timeout,
        tuple(sorted(config.client_options.items())),
        tuple(sorted((k, v.reveal()) for k, v in config.secret_options.items())),
    )


def client_set(config: ClusterConfig, conf_factory: ConfFactory) -> ClientSet:
    key = _fingerprint(config)
    with _sets_lock:
        found = _sets.get(key)
        if found is None:
            found = _sets[key] = ClientSet(conf_factory)
        return found


def close_all_clients() -> None:
    with _sets_lock:
        sets = list(_sets.values())
        _sets.clear()
    for clients in sets:
        clients.close()
