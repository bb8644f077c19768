"""What the capture engines hand to the database, and the contract of the sink that stores it.

An engine reads a DLQ, turns each message into a :class:`CapturedLetter` and
hands batches to a :class:`CaptureSink`. The sink's ``store`` returns only
once the batch is committed; only then does the engine acknowledge (RabbitMQ)
or commit offsets (Kafka) for exactly what was stored. A crash anywhere in
between leaves the message on the broker, and its redelivery is recognised by
its capture key, so nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from brokers.base import BrokerError

from .metadata import FailureInfo

DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024 * 1024  # RabbitMQ's own default max_message_size


@dataclass(frozen=True)
class CapturedLetter:
    """One dead letter as read from the broker, with every byte of its body.

    ``capture_key``: Kafka ``"<topic>:<partition>:<offset>"``, unique by
    itself. RabbitMQ: the SHA-256 of the message's content (delivery exchange
    and routing key, properties, headers except the redelivery counters quorum
    queues add, body); the sink makes it unique per occurrence (see
    ``dashboard.services.deadletters.store``). ``redelivered`` is the broker's
    flag: the message was handed out before and not acknowledged.
    ``headers`` and ``properties`` are JSON-safe (:mod:`.values`).
    """

    dlq: str
    vhost: str
    capture_key: str
    info: FailureInfo
    headers: Any
    properties: dict[str, Any]
    body: bytes
    key: bytes | None = None
    redelivered: bool = False
    timestamp: datetime | None = None


@dataclass(frozen=True)
class StoreResult:
    """``inserted`` new rows, ``duplicates`` letters that were stored before."""

    inserted: int
    duplicates: int


class CaptureSink(Protocol):
    async def begin(self) -> None:
        """A new consuming session starts: forget what the last one kept in memory."""

    async def store(self, letters: Sequence[CapturedLetter]) -> StoreResult:
        """Store the batch in one transaction; return only after it is committed."""

    async def acknowledged(self, result: StoreResult) -> None:
        """The broker now has the acks (or offsets) of the last stored batch."""


class OversizeMessage(BrokerError):
    """A dead letter bigger than the capture limit: it stays on the broker, capture stops.

    Everything before it has been stored and acknowledged. Raise the limit
    (``MQB_DLQ_MAX_MESSAGE_BYTES``) or move the message away to go on.
    """

    code = "oversize"

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


def too_big(dlq: str, size: int, limit: int) -> OversizeMessage:
    return OversizeMessage(
        f"a dead letter of {size} bytes in {dlq!r} is larger than the capture limit of"
        f" {limit} bytes (MQB_DLQ_MAX_MESSAGE_BYTES); it was left on the broker and capture"
        " of this DLQ is paused until the limit is raised or the message is moved away"
    )
