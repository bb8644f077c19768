"""Turning librdkafka's errors into the :mod:`brokers.base` errors users read.

librdkafka retries a dead bootstrap server forever in the background and only
says why in log lines and error callbacks; a request then merely times out.
:class:`LastError` remembers the latest complaint so a timeout can be
explained ("connection refused", "not a Kafka broker", "SASL handshake
failed"). Errors of single admin results (a missing topic, a group that is
not empty) are mapped by their Kafka error code.
"""

from __future__ import annotations

import logging
import threading

from confluent_kafka import KafkaError, KafkaException

from brokers.base import (
    BrokerAuthError,
    BrokerError,
    BrokerTimeout,
    BrokerUnavailable,
    NotFound,
    NotSupported,
)

log = logging.getLogger("brokers.kafka")


class GroupNotEmpty(NotSupported):
    """The consumer group has active members, so its offsets cannot be changed."""

    code = "group_active"


class CompactedTopic(NotSupported):
    """The topic is compact-only, so records cannot be deleted by offset."""

    code = "compacted_topic"


class LastError:
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


class RdkafkaLog(logging.Handler):
    """Feeds librdkafka log lines into :class:`LastError` and our logger."""

    def __init__(self, sink: LastError) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.WARNING or "fail" in message.lower():
            self.sink.set(message)
        log.debug("librdkafka: %s", message)


_NOT_FOUND = {
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_TOPIC,
    KafkaError._UNKNOWN_PARTITION,
    KafkaError.GROUP_ID_NOT_FOUND,
}
_GROUP_BUSY = {
    KafkaError.NON_EMPTY_GROUP,
    KafkaError.UNKNOWN_MEMBER_ID,
    KafkaError.REBALANCE_IN_PROGRESS,
    KafkaError.ILLEGAL_GENERATION,
}
_DENIED = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
}
_TRANSPORT = {KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN}


def kafka_error_of(exc: BaseException) -> KafkaError | None:
    if isinstance(exc, KafkaException) and exc.args and isinstance(exc.args[0], KafkaError):
        return exc.args[0]
    return None


def text_of(exc: BaseException) -> str:
    error = kafka_error_of(exc)
    return str(error.str()) if error is not None else str(exc)


def translate(
    error: KafkaError | None, what: str, *, servers: str, timeout: float, background: str
) -> BrokerError:
    """A user-facing error for a failed request, explained by ``background`` when vague."""
    own = error.str() if isinstance(error, KafkaError) else ""
    code = error.code() if isinstance(error, KafkaError) else None
    if code in _NOT_FOUND:
        return NotFound(f"{what}: {own}")
    if code in _GROUP_BUSY:
        return GroupNotEmpty(f"{what}: the group has active members ({own})")
    if code in _DENIED:
        return BrokerAuthError(f"{what}: not allowed ({own})")
    if code == KafkaError.MSG_SIZE_TOO_LARGE:
        return NotSupported(f"{what}: the record is larger than the topic or broker allows")
    # "Failed to get metadata: Broker transport failure" says nothing; the
    # background connection error logged just before it says why.
    generic = code in _TRANSPORT
    detail = (background if generic and background else own) or background
    lowered = f"{detail} {own}".lower()
    if code in (KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED):
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
    if detail and (generic or error is None):
        return BrokerUnavailable(
            f"Kafka at {servers} did not answer a {what} within {timeout:g} s: {detail}"
        )
    if detail:
        return BrokerError(f"{what} failed: {detail}")
    return BrokerTimeout(f"Kafka at {servers} did not answer a {what} within {timeout:g} s")
