"""Dead letters on every broker kind: what is captured, found and sent back.

Capture: an engine reads a DLQ, turns each message into a :class:`CapturedLetter` and
hands batches to a :class:`CaptureSink`. The sink's ``store`` returns only
once the batch is committed; only then does the engine acknowledge (RabbitMQ)
or commit offsets (Kafka) for exactly what was stored. A crash anywhere in
between leaves the message on the broker, and its redelivery is recognised by
its capture key, so nothing is lost and nothing is stored twice.

Discovery: a :class:`Discovery` lists the :class:`DiscoveredDLQ` s of a
cluster with what feeds them (:class:`DeadLetterSource`). Requeue: a sender
publishes a letter back with ``x-mqboard-requeue-count`` one higher
(:func:`next_count`), and a batch sender gives each letter an :class:`Outcome`.
The broker-specific engines and senders live in ``brokers.<kind>.deadletters``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from brokers.base.errors import BrokerError
from brokers.base.results import DLQ_NAME_PATTERN
from brokers.decode.metadata import FailureInfo

DEFAULT_MAX_MESSAGE_BYTES = 128 * 1024 * 1024  # RabbitMQ's own default max_message_size
REQUEUE_COUNT_HEADER = "x-mqboard-requeue-count"
NAME_RE = re.compile(DLQ_NAME_PATTERN)


@dataclass(frozen=True)
class CapturedLetter:
    """One dead letter as read from the broker, with every byte of its body.

    ``capture_key``: Kafka ``"<topic>:<partition>:<offset>"``, unique by
    itself. RabbitMQ: the SHA-256 of the message's content (delivery exchange
    and routing key, properties, headers except the redelivery counters quorum
    queues add, body); the sink makes it unique per occurrence (see
    ``dashboard.deadletters.store``). ``redelivered`` is the broker's
    flag: the message was handed out before and not acknowledged.
    ``headers`` and ``properties`` are JSON-safe (:mod:`brokers.decode.values`).
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


# -- discovery ---------------------------------------------------------------


@dataclass(frozen=True)
class DeadLetterSource:
    """A queue (or topic) whose dead letters land in a DLQ.

    ``via``: ``argument`` or ``policy`` (how its dead-letter exchange is set),
    or ``name`` (Kafka: the DLQ's name minus its suffix). ``routing_key`` is
    the dead-letter routing key, None when messages keep their own.
    """

    name: str
    via: str
    exchange: str | None = None
    routing_key: str | None = None
    note: str = ""


@dataclass(frozen=True)
class DiscoveredDLQ:
    kind: str  # "rabbitmq" or "kafka"
    name: str
    vhost: str  # "" on Kafka
    depth: int | None
    found_by: tuple[str, ...]  # "dead-letter exchange", "name", "configured"
    sources: tuple[DeadLetterSource, ...] = ()
    queue_type: str = ""  # classic, quorum, stream; "topic" on Kafka
    exists: bool = True  # False: a dead-letter exchange routes to a queue not (yet) there

    @property
    def capturable(self) -> bool:
        return self.exists and self.queue_type != "stream"


@dataclass(frozen=True)
class Discovery:
    dlqs: tuple[DiscoveredDLQ, ...]
    checked_at: datetime
    scanned: int
    complete: bool  # False: stopped at the scan limit
    notes: tuple[str, ...] = ()


# -- requeue -----------------------------------------------------------------


class Unroutable(BrokerError):
    """The target exchange or topic does not exist, or nothing is bound to take the message."""


def next_count(value: object) -> int:
    """One more than a requeue-count header's value (0 when absent or garbled)."""
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", "replace")
    try:
        return max(int(str(value)), 0) + 1 if value is not None else 1
    except ValueError:
        return 1


class Result(StrEnum):
    SENT = "sent"
    UNROUTABLE = "unroutable"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Outcome:
    result: Result
    message: str = ""


SENT = Outcome(Result.SENT)


class DeadLetters(Protocol):
    """The dead-letter capability: discover DLQs, capture their letters, send letters back."""
