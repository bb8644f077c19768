"""Frozen results of reading, publishing and purging RabbitMQ messages.

Mappings hold what the broker sent with AMQP types kept: ``bytearray`` for
byte arrays, ``Decimal``, aware ``datetime`` for timestamps, ``None`` for void.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from brokers.base import BrokerError, NotSupported


@dataclass(frozen=True)
class PeekedMessage:
    """One message read by a peek. ``body`` is every byte, as sent."""

    position: int  # 1-based, in the order the broker handed them out
    body: bytes
    exchange: str
    routing_key: str
    redelivered: bool
    properties: Mapping[str, Any]
    headers: Mapping[str, Any]


@dataclass(frozen=True)
class PeekResult:
    """``destructive`` is False only for streams, read by offset without side effects."""

    vhost: str
    queue: str
    queue_type: str
    requested: int
    messages: tuple[PeekedMessage, ...]
    remaining: int | None  # ready messages the broker reported after the last get
    destructive: bool
    fetched_at: datetime


@dataclass(frozen=True)
class DeliveryLimit:
    """The delivery limit a quorum queue applies: after ``limit`` returns, the next
    return dead-letters (or drops) the message. ``source`` says where it comes from."""

    limit: int
    source: str  # "argument", "policy", "argument and policy", "RabbitMQ 4 default"


@dataclass(frozen=True)
class PeekPlan:
    """What a peek of a queue would do, known before any message is touched."""

    vhost: str
    queue: str
    queue_type: str
    delivery_limit: DeliveryLimit | None

    @property
    def destructive(self) -> bool:
        return self.queue_type != "stream"


PROPERTY_NAMES = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
)


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish. ``properties`` keys are :data:`PROPERTY_NAMES`."""

    exchange: str
    routing_key: str
    body: bytes
    headers: Mapping[str, Any] = field(default_factory=dict)
    properties: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PublishResult:
    vhost: str
    exchange: str
    routing_key: str
    size: int
    message_id: str | None
    confirmed: bool


@dataclass(frozen=True)
class PurgeResult:
    """``ready_before`` is exact (a passive declare just before the purge);
    ``unacked_before`` comes from statistics that may lag a few seconds."""

    vhost: str
    queue: str
    purged: int
    ready_before: int | None
    unacked_before: int | None


class Unroutable(BrokerError):
    """A mandatory publish that no queue accepted; nothing was delivered."""

    code = "unroutable"


class PeekRefused(NotSupported):
    """A peek that could dead-letter or drop a message was not started; nothing was read."""

    code = "delivery_limit"

    def __init__(self, message: str, limit: DeliveryLimit) -> None:
        super().__init__(message)
        self.limit = limit
