"""Kafka adapter over confluent-kafka (librdkafka).

Features: connect, ping (an answered metadata request), cluster overview
(cluster id, controller, brokers with host/port/rack, topic, partition and
consumer-group counts, broker version read from the ApiVersions handshake).

Connection settings: ``bootstrap_servers`` and ``client_options``, librdkafka
properties passed through unchanged (``security.protocol``, ``sasl.mechanism``,
``sasl.username``, ``ssl.ca.location``...); secret ones live in
``secret_options``. An unknown property is a configuration error, raised
before anything is sent.

Limitations: librdkafka calls block, so each one runs in a worker thread with
a timeout and never on the event loop. librdkafka retries a dead bootstrap
server forever in the background; we turn its last logged error into the
message users see when a request times out.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from brokers.base import (
    DLQ_NAME_PATTERN,
    BrokerAuthError,
    BrokerBase,
    BrokerError,
    BrokerTimeout,
    BrokerUnavailable,
    ClusterConfig,
    ConfigError,
    DeadLetterQueue,
    Node,
    NotSupported,
    Overview,
)
from brokers.kafka_protocol import probe_broker_version

T = TypeVar("T")
log = logging.getLogger(__name__)

# Settings we own; a user's client_options may not override them.
_RESERVED = {"bootstrap.servers", "error_cb", "logger"}


class _LastError:
    """Remembers librdkafka's most recent complaint, to explain a timeout."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.text = ""

    def set(self, text: str) -> None:
        with self._lock:
            self.text = text

    def get(self) -> str:
        with self._lock:
            return self.text


class _RdkafkaLog(logging.Handler):
    """Feeds librdkafka log lines into ``_LastError`` and our logger."""

    def __init__(self, sink: _LastError) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING or "fail" in message.lower():
            self.sink.set(message)
        log.debug("librdkafka: %s", message)


class KafkaBroker(BrokerBase):
    kind: ClassVar[str] = "kafka"

    def __init__(self, config: ClusterConfig) -> None:
        if not config.bootstrap_servers:
            raise ConfigError(f"cluster {config.slug!r}: bootstrap_servers is required for Kafka")
        clash = _RESERVED & set(config.client_options)
        if clash:
            raise ConfigError(f"cluster {config.slug!r}: {', '.join(sorted(clash))} cannot be set")
        self.config = config
        self._admin: AdminClient | None = None
        self._last_error = _LastError()

    def client_config(self) -> dict[str, Any]:
        """The librdkafka configuration, secrets revealed: never log this."""
        rd_logger = logging.getLogger(f"brokers.kafka.rdkafka.{self.config.slug}")
        rd_logger.propagate = False
        if not rd_logger.handlers:
            rd_logger.addHandler(_RdkafkaLog(self._last_error))
        timeout_ms = int(self.config.timeout * 1000)
        conf: dict[str, Any] = {
            "bootstrap.servers": self.config.bootstrap_servers,
            "client.id": f"mqboard-{self.config.slug}",
            "socket.timeout.ms": max(timeout_ms, 1000),
            "socket.connection.setup.timeout.ms": max(timeout_ms, 1000),
            "reconnect.backoff.max.ms": 2000,
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
                    f"cluster {self.config.slug!r}: invalid Kafka client option: {_text(exc)}"
                ) from None
        await self.ping()

    async def close(self) -> None:
        # AdminClient has no close(); dropping the last reference destroys it.
        self._admin = None

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            raise BrokerUnavailable(f"cluster {self.config.slug!r} is not connected")
        return self._admin

    # -- reads -----------------------------------------------------------

    async def ping(self) -> None:
        await self._metadata()

    async def overview(self) -> Overview:
        metadata = await self._metadata()
        groups_future = self.admin.list_consumer_groups(request_timeout=self.config.timeout)
        version_task = asyncio.ensure_future(self._version(metadata))
        try:
            groups = await asyncio.wait_for(
                asyncio.wrap_future(groups_future), timeout=self.config.timeout + 1
            )
            group_count: int | None = len(groups.valid)
        except (KafkaException, TimeoutError):
            group_count = None  # unknown, not zero
        version = await version_task
        topics = [t for name, t in metadata.topics.items() if not name.startswith("__")]
        return Overview(
            kind=self.kind,
            product="Apache Kafka",
            version=version,
            cluster_name=metadata.cluster_id,
            nodes=tuple(
                Node(
                    name=str(b.id),
                    host=b.host,
                    port=b.port,
                    is_controller=b.id == metadata.controller_id,
                )
                for b in sorted(metadata.brokers.values(), key=lambda b: b.id)
            ),
            checked_at=datetime.now(UTC),
            topics=len(topics),
            partitions=sum(len(t.partitions) for t in topics),
            consumer_groups=group_count,
        )

    async def dead_letter_queues(self, limit: int = 50) -> tuple[DeadLetterQueue, ...]:
        metadata = await self._metadata()
        pattern = re.compile(DLQ_NAME_PATTERN)
        names = sorted(n for n in metadata.topics if pattern.search(n))[:limit]
        partitions = [
            TopicPartition(name, p) for name in names for p in metadata.topics[name].partitions
        ]
        depths: dict[str, int | None] = dict.fromkeys(names, 0)
        if partitions:
            low, high = await asyncio.gather(
                self._offsets(partitions, OffsetSpec.earliest()),  # type: ignore[no-untyped-call]
                self._offsets(partitions, OffsetSpec.latest()),  # type: ignore[no-untyped-call]
            )
            for tp in partitions:
                if tp in low and tp in high and depths[tp.topic] is not None:
                    depths[tp.topic] = int(depths[tp.topic] or 0) + high[tp] - low[tp]
                else:
                    depths[tp.topic] = None  # one unknown partition makes the sum unknown
        now = datetime.now(UTC)
        return tuple(DeadLetterQueue(name=n, depth=depths[n], checked_at=now) for n in names)

    # -- internals -------------------------------------------------------

    async def _offsets(self, partitions: list[Any], spec: Any) -> dict[Any, int]:
        futures = self.admin.list_offsets(
            {tp: spec for tp in partitions}, request_timeout=self.config.timeout
        )
        results: dict[Any, int] = {}
        for tp, future in futures.items():
            try:
                info = await asyncio.wait_for(
                    asyncio.wrap_future(future), timeout=self.config.timeout + 1
                )
            except (KafkaException, TimeoutError):
                continue
            results[tp] = int(info.offset)
        return results

    # -- calls -----------------------------------------------------------

    async def _version(self, metadata: Any) -> str | None:
        brokers = sorted(metadata.brokers.values(), key=lambda b: b.id)
        if not brokers:
            return None
        broker = brokers[0]
        return await self._blocking(
            lambda: probe_broker_version(broker.host, broker.port, self.config.timeout),
            what="ApiVersions request",
        )

    async def _metadata(self) -> Any:
        return await self._blocking(self._list_topics, what="metadata request")

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

    async def _blocking(self, call: Callable[[], T], *, what: str) -> T:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(
                loop.run_in_executor(None, call), timeout=self.config.timeout + 1
            )
        except KafkaException as exc:
            raise self._translate(exc.args[0] if exc.args else None, what) from None
        except TimeoutError:
            raise self._translate(None, what) from None
        except OSError as exc:
            raise BrokerUnavailable(
                f"{what} to {self.config.bootstrap_servers} failed: {exc}"
            ) from None

    def _on_error(self, error: KafkaError) -> None:
        text = error.str()
        # "1/1 brokers are down" follows the error that says why; keep the why.
        if "brokers are down" in text and self._last_error.get():
            return
        self._last_error.set(text)

    def _translate(self, error: KafkaError | None, what: str) -> BrokerError:
        servers = self.config.bootstrap_servers
        own = error.str() if isinstance(error, KafkaError) else ""
        background = self._last_error.get()
        # "Failed to get metadata: Broker transport failure" says nothing; the
        # background connection error logged just before it says why.
        generic = isinstance(error, KafkaError) and error.code() in (
            KafkaError._TRANSPORT,
            KafkaError._TIMED_OUT,
            KafkaError._ALL_BROKERS_DOWN,
        )
        detail = (background if generic and background else own) or background
        lowered = f"{detail} {own}".lower()
        if isinstance(error, KafkaError) and error.code() in (
            KafkaError._AUTHENTICATION,
            KafkaError.SASL_AUTHENTICATION_FAILED,
        ):
            return BrokerAuthError(f"Kafka at {servers} refused the credentials: {detail}")
        if "unsupported sasl mechanism" in lowered or "unsupported_sasl_mechanism" in lowered:
            return NotSupported(f"Kafka at {servers} does not support this SASL setting: {detail}")
        if "authentication" in lowered or "sasl" in lowered:
            return BrokerAuthError(f"Kafka at {servers} failed authentication: {detail}")
        if "apiversion" in lowered or "invalid response size" in lowered:
            return BrokerError(
                f"{servers} answered, but not like a Kafka broker (is it another service's port,"
                f" or the wrong security.protocol?): {detail}",
                permanent=True,
            )
        if "connection refused" in lowered:
            return BrokerUnavailable(
                f"no Kafka broker at {servers}: connection refused (is it running?)"
            )
        if detail:
            return BrokerUnavailable(
                f"Kafka at {servers} did not answer a {what} within"
                f" {self.config.timeout:g} s: {detail}"
            )
        return BrokerTimeout(
            f"Kafka at {servers} did not answer a {what} within {self.config.timeout:g} s"
        )


def _text(exc: BaseException) -> str:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return str(exc.args[0].str())
    return str(exc)
