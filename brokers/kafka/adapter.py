"""Kafka adapter over confluent-kafka (librdkafka).

Features: connect, ping (an answered metadata request), cluster overview
(cluster id, controller, brokers with host/port/rack, topic, partition and
consumer-group counts, broker version read from the ApiVersions handshake),
plus the shared plumbing of the browsing modules: ``topics`` (cluster,
topics, partitions, configs), ``groups`` (consumer groups, lag, offset
resets), ``browse`` (records, search) and ``write`` (produce, purge).

Connection settings: ``bootstrap_servers`` and ``client_options``, librdkafka
properties passed through unchanged (``security.protocol``, ``sasl.mechanism``,
``sasl.username``, ``ssl.ca.location``...); secret ones live in
``secret_options``. An unknown property is a configuration error, raised
before anything is sent.

Limitations: librdkafka calls block, so each one runs in a worker thread with
a timeout and never on the event loop; admin calls return futures, awaited
with one deadline per call (``calls``). Metadata is summarized in the
worker thread with the garbage collector paused (``metadata``). One
AdminClient per adapter (and so per process and event loop). librdkafka
retries a dead bootstrap server forever in the background; we turn its last
logged error into the message users see when a request times out.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import re
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from brokers.base import (
    DLQ_NAME_PATTERN,
    Broker,
    BrokerBase,
    BrokerError,
    BrokerUnavailable,
    ClusterConfig,
    ConfigError,
    DeadLetterQueue,
    Node,
    Overview,
)
from brokers.kafka import bulk
from brokers.kafka.calls import KafkaCalls, retire
from brokers.kafka.clients import ClientSet, client_set
from brokers.kafka.errors import LastError, RdkafkaLog, text_of
from brokers.kafka.metadata import gc_paused, summarize
from brokers.kafka.protocol import probe_broker_version

T = TypeVar("T")
K = TypeVar("K")
log = logging.getLogger(__name__)

# Settings we own; a user's client_options may not override them.
OFFSETS_BATCH = 500
"""partitions per ListOffsets call"""
REPLICATION_TOPICS = 5
"""how many topics with under-replicated or offline partitions the overview names"""
_RESERVED = {"bootstrap.servers", "error_cb", "logger"}

Partition = tuple[str, int]


def offsets_found(answers: dict[int, Any]) -> dict[Partition, int]:
    """The offsets in answers to :meth:`KafkaBroker.offsets_requests`; failed ones left out."""
    found: dict[Partition, int] = {}
    for answer in answers.values():
        if isinstance(answer, BrokerError):
            continue
        found.update(
            ((tp.topic, tp.partition), int(info.offset))
            for tp, info in answer.items()
            if not isinstance(info, KafkaError)
        )
    return found


class KafkaBroker(KafkaCalls, BrokerBase):
    kind: ClassVar[str] = "kafka"

    def __init__(self, config: ClusterConfig) -> None:
        if not config.bootstrap_servers:
            raise ConfigError(f"cluster {config.slug!r}: bootstrap_servers is required for Kafka")
        clash = _RESERVED & set(config.client_options)
        if clash:
            raise ConfigError(f"cluster {config.slug!r}: {', '.join(sorted(clash))} cannot be set")
        self.config = config
        self._admin: AdminClient | None = None
        self.admin_generation = 0
        """counts retired AdminClients: whoever keeps clients of its own for this
        cluster (the metrics sampler) retires them when it changes"""
        self._last_error = LastError()

    def client_config(self) -> dict[str, Any]:
        """The librdkafka configuration, secrets revealed: never log this."""
        rd_logger = logging.getLogger(f"brokers.kafka.rdkafka.{self.config.slug}")
        rd_logger.propagate = False
        if not rd_logger.handlers:
            rd_logger.addHandler(RdkafkaLog(self._last_error))
        timeout_ms = int(self.config.timeout * 1000)
        conf: dict[str, Any] = {
            "bootstrap.servers": self.config.bootstrap_servers,
            "client.id": f"mqboard-{self.config.slug}",
            "socket.timeout.ms": max(timeout_ms, 1000),
            "socket.connection.setup.timeout.ms": max(timeout_ms, 1000),
            "reconnect.backoff.max.ms": 2000,
            # Admin requests go to the controller metadata names (in KRaft a random
            # live broker); when that broker dies librdkafka keeps waiting for it until
            # the next metadata refresh (5 min by default). Refreshing every 10 s lets
            # the dashboard go on through the other brokers within seconds.
            "topic.metadata.refresh.interval.ms": 10000,
            # Never create a topic by asking about it (producers default to true).
            "allow.auto.create.topics": False,
            "error_cb": self._on_error,
            "logger": rd_logger,
        }
        conf.update(self.config.client_options)
        conf.update({k: v.reveal() for k, v in self.config.secret_options.items()})
        return conf

    # -- lifecycle -------------------------------------------------------

    async def connect(self) -> None:
        if self._admin is None:
            try:
                self._admin = AdminClient(self.client_config())
            except (KafkaException, ValueError, TypeError) as exc:
                raise ConfigError(
                    f"cluster {self.config.slug!r}: invalid Kafka client option: {text_of(exc)}"
                ) from None
        await self.ping()

    async def close(self) -> None:
        # AdminClient has no close(); dropping the last reference destroys it.
        # Browse consumers and the producer are shared per process (clients).
        self._admin = None

    def abandoned(self) -> None:
        """Retire the AdminClient: an admin request was given up on (see ``calls``)."""
        old, self._admin = self._admin, None
        self.admin_generation += 1
        if old is None:
            return
        try:
            self._admin = AdminClient(self.client_config())
        finally:
            retire(old)

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            raise BrokerUnavailable(f"cluster {self.config.slug!r} is not connected")
        return self._admin

    @property
    def clients(self) -> ClientSet:
        """This cluster's long-lived browse consumers and producer."""
        return client_set(self.config, self.client_config)

    # -- reads -----------------------------------------------------------

    async def ping(self) -> None:
        await self.metadata()

    async def overview(self) -> Overview:
        summary = await self.read_metadata(summarize)
        groups_future = self.admin.list_consumer_groups(request_timeout=self.config.timeout)
        version_task = asyncio.ensure_future(self.version(summary.brokers))
        try:
            async with asyncio.timeout(self.config.timeout + 1):
                groups = await asyncio.wrap_future(groups_future)
            group_count: int | None = len(groups.valid)
        except (KafkaException, TimeoutError):
            group_count = None  # unknown, not zero
        version = await version_task
        visible = [name for name in summary.partitions if not name.startswith("__")]
        return Overview(
            kind=self.kind,
            product="Apache Kafka",
            version=version,
            cluster_name=summary.cluster_id,
            # Metadata lists live brokers only: one that still holds replicas but
            # is not listed is down.
            nodes=tuple(
                Node(name=str(i), host=host, port=port, is_controller=i == summary.controller_id)
                for i, host, port in summary.brokers
            )
            + tuple(Node(name=str(i), running=False) for i in summary.missing_brokers),
            checked_at=datetime.now(UTC),
            topics=len(visible),
            partitions=sum(len(summary.partitions[name]) for name in visible),
            consumer_groups=group_count,
            under_replicated_partitions=sum(summary.under_replicated.values()),
            offline_partitions=sum(summary.offline.values()),
            replication_topics=tuple(
                sorted(set(summary.under_replicated) | set(summary.offline))[:REPLICATION_TOPICS]
            ),
        )

    async def dead_letter_queues(
        self, limit: int = 50, *, vhost: str | None = None
    ) -> tuple[DeadLetterQueue, ...]:
        summary = await self.read_metadata(summarize)
        pattern = re.compile(DLQ_NAME_PATTERN)
        names = sorted(n for n in summary.partitions if pattern.search(n))[:limit]
        partitions = [(name, p) for name in names for p in summary.partitions[name]]
        depths: dict[str, int | None] = dict.fromkeys(names, 0)
        if partitions:
            low, high = await self.watermarks(partitions)
            for tp in partitions:
                if tp in low and tp in high and depths[tp[0]] is not None:
                    depths[tp[0]] = int(depths[tp[0]] or 0) + high[tp] - low[tp]
                else:
                    depths[tp[0]] = None  # one unknown partition makes the sum unknown
        now = datetime.now(UTC)
        return tuple(DeadLetterQueue(name=n, depth=depths[n], checked_at=now) for n in names)

    # -- shared plumbing of the browsing modules ---------------------------

    async def metadata(self) -> Any:
        """Cluster metadata of every topic (``list_topics``), failing fast when down."""
        return await self.blocking(self._list_topics, what="metadata request")

    async def read_metadata(self, extract: Callable[[Any], T]) -> T:
        """``extract(metadata)``, run in the worker thread; only its result comes back.

        Metadata of a big cluster is tens of thousands of Python objects. Built
        and dropped with the garbage collector paused, they are freed by
        reference counting before a collection can promote them; promoted, they
        soon trigger full collections (50-100 ms pauses in a Django process).
        """

        def call() -> T:
            with gc_paused():
                return extract(self._list_topics())

        return await self.blocking(call, what="metadata request")

    async def offsets(
        self, partitions: Iterable[Partition], spec: Any, *, read_committed: bool = False
    ) -> dict[Partition, int]:
        """Batched ListOffsets calls; partitions whose answer failed are left out.
        ``read_committed``: the latest offset is the last stable one (no open transaction).

        One future per call (:mod:`brokers.kafka.bulk`), not one per partition, and
        at most ``OFFSETS_BATCH`` partitions a call: librdkafka takes a call's
        partitions in time that grows faster than their number (15,000 in one call:
        1.6 s of CPU; in calls of 500: 0.1 s).
        """
        futures = self.offsets_requests(partitions, spec, read_committed=read_committed)
        if not futures:
            return {}
        return offsets_found(await self.gather(futures, "ListOffsets request"))

    def offsets_requests(
        self, partitions: Iterable[Partition], spec: Any, *, read_committed: bool = False
    ) -> dict[int, concurrent.futures.Future[Any]]:
        """The batched ListOffsets calls of :meth:`offsets`, sent: a future per batch.
        Their answers (:meth:`gather` or :meth:`wait_all`) go to :func:`offsets_found`."""
        wanted = list(dict.fromkeys(partitions))
        batches = [wanted[i : i + OFFSETS_BATCH] for i in range(0, len(wanted), OFFSETS_BATCH)]
        return {
            n: bulk.list_offsets(
                self.admin, batch, spec, self.config.timeout, read_committed=read_committed
            )
            for n, batch in enumerate(batches)
        }

    async def watermarks(
        self, partitions: Iterable[Partition]
    ) -> tuple[dict[Partition, int], dict[Partition, int]]:
        """Low and high watermarks, as two concurrent batched calls."""
        wanted = list(partitions)
        low, high = await asyncio.gather(
            self.offsets(wanted, OffsetSpec.earliest()),  # type: ignore[no-untyped-call]
            self.offsets(wanted, OffsetSpec.latest()),  # type: ignore[no-untyped-call]
        )
        return low, high

    async def version(self, brokers: tuple[tuple[int, str, int], ...]) -> str | None:
        """The release of the first broker (``(id, host, port)``), or None if it does not say."""
        if not brokers:
            return None
        _, host, port = brokers[0]
        return await self.blocking(
            lambda: probe_broker_version(host, port, self.config.timeout),
            what="ApiVersions request",
        )

    # -- internals -------------------------------------------------------

    def _list_topics(self) -> Any:
        """``list_topics`` in short slices, failing fast once librdkafka knows why.

        librdkafka learns within milliseconds that a port refuses connections or
        does not speak Kafka, but a single ``list_topics`` call would still wait
        out the whole timeout. Its callbacks only fire from ``poll()``.
        """
        admin = self.admin
        deadline = time.monotonic() + self.config.timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                metadata = admin.list_topics(timeout=max(0.05, min(0.5, remaining)))
            except KafkaException:
                admin.poll(0)
                if self._last_error.get() or remaining <= 0.5:
                    raise
                continue
            self._last_error.set("")
            return metadata

    def _on_error(self, error: KafkaError) -> None:
        text = error.str()
        # "1/1 brokers are down" follows the error that says why; keep the why.
        if "brokers are down" in text and self._last_error.get():
            return
        self._last_error.set(text)


def kafka_adapter(broker: Broker) -> KafkaBroker:
    """``broker`` as the Kafka adapter it is: the capabilities of the Kafka kind are
    only ever given the adapter the kind made (``brokers.registry.make_broker``)."""
    if not isinstance(broker, KafkaBroker):
        raise TypeError(f"a Kafka capability was given a {type(broker).__name__}")
    return broker
