"""Dead letters on every broker kind: what is captured, found and sent back.

Capture: an engine reads a DLQ, turns each message into a :class:`CapturedLetter` and
hands batches to a :class:`CaptureSink`. The sink's ``store`` returns only
once the batch is committed; only then does the engine acknowledge (RabbitMQ)
or commit offsets (Kafka) for exactly what was stored. A crash anywhere in
between leaves the message on the broker, and its redelivery is recognised by
its capture key, so nothing is lost and nothing is stored twice.

Before a bulk requeue, :meth:`DeadLetters.missing` says which of the distinct
:class:`Destination` s of the letters do not exist now (exchange or topic gone).

Discovery: a :class:`Discovery` lists the :class:`DiscoveredDLQ` s of a
cluster with what feeds them (:class:`DeadLetterSource`). Requeue: the kind
turns a :class:`StoredLetter` (plus an optional :class:`Edit`) into an
:class:`OutgoingLetter` with ``x-mqboard-requeue-count`` one higher
(:func:`next_count`); its one :class:`LetterSender` sends one letter or a
batch alike and gives each letter an :class:`Outcome`.

:class:`DeadLetters` is the capability a :class:`~brokers.base.contract.BrokerKind`
carries; ``brokers.<kind>.deadletters`` implements it. What the dashboard
reads from its settings comes in as :class:`DiscoveryOptions` and
:class:`CaptureOptions`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from brokers.base.config import ClusterConfig
from brokers.base.errors import BrokerError
from brokers.base.results import DLQ_NAME_PATTERN
from brokers.decode.metadata import FailureInfo

if TYPE_CHECKING:
    from brokers.base.contract import Broker

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


@runtime_checkable
class PositionSink(Protocol):
    """A sink that wants to know, per partition, the offset capture committed (Kafka)."""

    async def committed(self, positions: dict[int, int]) -> None: ...


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
    # Kafka: the high watermark of each partition, ``(partition, offset)``; empty if unknown.
    ends: tuple[tuple[int, int], ...] = ()

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


class InvalidLetter(ValueError):
    """A letter cannot be sent as asked: no known origin, or an edit of the wrong shape.

    The message says what the user can do about it.
    """


@dataclass(frozen=True)
class StoredLetter:
    """A captured dead letter as stored, in broker-neutral fields (filled from a database row).

    ``body`` is every byte (the full body when the stored one was cut);
    ``body_truncated`` says the stored copy was cut. ``is_task``: the letter
    is a Celery task (it goes back to the queue its worker reads).
    ``headers`` and ``properties`` are JSON-safe, as captured.
    """

    vhost: str
    origin_exchange: str
    origin_routing_key: str
    origin_queue: str
    origin_topic: str
    origin_partition: int | None
    is_task: bool
    key: bytes | None
    headers: Any
    properties: Mapping[str, Any]
    body: bytes
    body_truncated: bool = False


@dataclass(frozen=True)
class RequeueTarget:
    """Where to send instead of the origin: an exchange and routing key, or a topic."""

    exchange: str | None = None
    routing_key: str | None = None
    topic: str | None = None


@dataclass(frozen=True)
class TargetField:
    """One form field that names a requeue target (read back by ``target_from``)."""

    name: str
    label: str
    required: bool = False
    placeholder: str = ""


@dataclass(frozen=True)
class Edit:
    """An edited body and/or headers (as the kind's headers look: an object, or pairs).

    ``properties``: message properties to replace (RabbitMQ: e.g. ``correlation_id``);
    kinds without message properties ignore them.
    """

    body: bytes | None = None
    headers: Any = None
    properties: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class OutgoingLetter:
    """A letter ready for a :class:`LetterSender` opened for ``address``.

    ``address``: what a sender is opened for (RabbitMQ: the vhost; Kafka: "").
    ``destination``: where it goes, for the audit; ``where``: the same for people.
    ``message``: the kind's own message; only that kind's sender reads it.
    """

    address: str
    destination: Mapping[str, str]
    where: str
    message: object


@dataclass(frozen=True)
class Destination:
    """Where letters go, as :class:`OutgoingLetter` names it: the sender's ``address``
    and the ``destination`` fields, as sorted pairs (hashable, one per distinct place)."""

    address: str
    fields: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, letter: OutgoingLetter) -> Destination:
        return cls(
            letter.address, tuple(sorted((k, str(v)) for k, v in letter.destination.items()))
        )

    def get(self, name: str) -> str:
        return dict(self.fields).get(name, "")


class LetterSender(Protocol):
    """Sends letters to one address of one cluster, keeping its connection between calls."""

    async def send(self, letters: Sequence[OutgoingLetter]) -> list[Outcome]:
        """One :class:`Outcome` per letter, in order; never raises for a letter's fate."""

    async def close(self) -> None:
        """Release the connection (or producer); safe to call twice."""


class CaptureEngine(Protocol):
    sink: CaptureSink

    async def run(self, stop: asyncio.Event) -> None:
        """Capture into the sink until ``stop`` is set; raise a BrokerError when it cannot."""


@dataclass(frozen=True)
class DiscoveryOptions:
    """``vhosts``: where to look (None: every vhost), on kinds with vhosts.
    ``scan_limit``: queues read at most. ``configured``: names the operator
    declared DLQs of this cluster (Kafka topics)."""

    vhosts: tuple[str | None, ...] = (None,)
    scan_limit: int = 50_000
    configured: tuple[str, ...] = ()


@dataclass(frozen=True)
class CaptureOptions:
    """How capture reads: ``group`` is the consumer group (Kafka) of this cluster."""

    batch_size: int = 100
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    ack_delay: float = 0.0
    prefetch: int = 200
    group: str = "mqboard-capture"


class CaptureKeys(StrEnum):
    """How capture keys tell letters apart (see :class:`CapturedLetter`).

    ``EXACT``: a key names one record (topic, partition, offset); a key stored
    before is the same record read again. ``CONTENT``: a key is a content hash;
    byte-identical letters get numbered keys and redeliveries are claimed.
    """

    EXACT = "exact"
    CONTENT = "content"


class SameMessage(StrEnum):
    """How a new dead letter is recognised as a requeued one that failed again."""

    MESSAGE_ID = "message_id"
    KEY_AND_FINGERPRINT = "key_and_fingerprint"


class DeadLetters(Protocol):
    """The dead-letter capability: discover DLQs, capture their letters, send letters back."""

    capture_keys: CaptureKeys
    same_message: SameMessage
    keyed: bool  # letters carry a record key, and a value that may be null
    not_found_hint: str  # what else makes a DLQ known, for "not a DLQ" messages
    noun: str  # what a DLQ of this kind is: "queue", "topic"
    scans: bool  # discovery reads the cluster's queues, up to DiscoveryOptions.scan_limit
    depth_note: str  # what a discovered DLQ's depth counts, and how fresh it is
    target_fields: tuple[TargetField, ...]  # the form fields target_from reads

    def describe(self, vhost: str, name: str) -> str:
        """A DLQ as people read it: "queue 'x' in vhost 'v'", "topic 'x'"."""

    async def discover(self, broker: Broker, options: DiscoveryOptions) -> Discovery:
        """The cluster's DLQs (of ``options.vhosts``) with what feeds them."""

    def capture(
        self,
        config: ClusterConfig,
        vhost: str,
        dlq: str,
        sink: CaptureSink,
        options: CaptureOptions,
    ) -> CaptureEngine:
        """An engine that captures one DLQ into ``sink``."""

    def sender(self, config: ClusterConfig, address: str) -> LetterSender:
        """The one sender of this kind, for a single letter and a bulk job alike."""

    def target_from(self, form: Mapping[str, Any]) -> RequeueTarget | None:
        """The target a form names (its fields for this kind), None when it names none."""

    def without_noop(self, letter: StoredLetter, edit: Edit) -> Edit | None:
        """The edit, minus changes that only look like changes (None: nothing is left)."""

    def body_is_json(self, letter: StoredLetter) -> bool:
        """Whether an edited body must be valid JSON."""

    def edited_headers(
        self, letter: StoredLetter, headers: Any
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Check edited headers (InvalidLetter, InvalidValue); (before, after) by key."""

    def outgoing(
        self, letter: StoredLetter, target: RequeueTarget | None, edit: Edit | None
    ) -> OutgoingLetter:
        """The letter to send: to its origin or ``target``, with the requeue count raised.

        InvalidLetter when it has no known origin and no target; InvalidValue
        for a name or value the broker client cannot send.
        """

    async def missing(
        self, broker: Broker, destinations: Sequence[Destination]
    ) -> dict[Destination, str]:
        """Of ``destinations``, those that do not exist now, each with why ("exchange 'x'
        does not exist in vhost 'v'", "topic 'x' does not exist"). Names are validated
        before any client library sees them; an invalid one is missing with the reason."""
