"""Frozen results and queries of the RabbitMQ browsing API (queues, exchanges, messages).

``None`` always means unknown (not asked for, or the broker did not say),
never zero. Mappings (arguments, headers, properties) hold what the broker
sent, with AMQP types kept: ``bytearray`` for byte arrays, ``Decimal``,
aware ``datetime`` for timestamps, ``None`` for void.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from brokers.base import BrokerError, NotSupported

# What users sort by -> the management API's sort key.
QUEUE_SORTS: dict[str, str] = {
    "name": "name",
    "depth": "messages",
    "ready": "messages_ready",
    "unacked": "messages_unacknowledged",
    "consumers": "consumers",
    "publish_rate": "message_stats.publish_details.rate",
    "deliver_rate": "message_stats.deliver_get_details.rate",
}
# Sorts (and columns) the management API only has with per-queue statistics on.
STATS_SORTS = frozenset({"consumers", "publish_rate", "deliver_rate"})
QUEUE_TYPES = ("classic", "quorum", "stream")
QUEUE_STATES = ("running", "idle", "flow", "down", "crashed", "stopped", "minority")
MAX_PAGE_SIZE = 500  # the management API refuses more


class ManagementAPI(Protocol):
    """What the inventory functions need from the adapter."""

    async def management_get(self, path: str, params: dict[str, str] | None = None) -> Any: ...

    async def management_page(self, path: str, params: dict[str, str]) -> tuple[Any, str]: ...


@dataclass(frozen=True)
class QueueQuery:
    """One page of the queue list. ``type``, ``state`` and ``has_dlx`` cannot be
    filtered by the management API; they are applied by a bounded scan."""

    vhost: str | None = None
    page: int = 1
    page_size: int = 100
    sort: str = "name"
    reverse: bool = False
    name: str = ""
    regex: bool = False
    type: str | None = None
    state: str | None = None
    has_dlx: bool | None = None
    stats: bool = False
    scan_limit: int = 5000  # queues a type/state/DLX filter may read

    @property
    def needs_stats(self) -> bool:
        """Consumers, policies and rates exist only with statistics (about 2x the cost)."""
        return self.stats or self.sort in STATS_SORTS

    @property
    def local_filters(self) -> bool:
        return self.type is not None or self.state is not None or self.has_dlx is not None


@dataclass(frozen=True)
class ScanInfo:
    """How much a bounded scan read: ``complete`` means every queue in scope was seen."""

    scanned: int
    limit: int
    complete: bool
    requests: int = 0


@dataclass(frozen=True)
class QueueRow:
    vhost: str
    name: str
    type: str
    state: str | None
    messages: int | None
    ready: int | None
    unacked: int | None
    consumers: int | None = None
    publish_rate: float | None = None
    deliver_rate: float | None = None
    dead_letter_exchange: str | None = None
    dlx_source: str | None = None  # "argument" or "policy"
    policy: str | None = None
    durable: bool | None = None
    auto_delete: bool | None = None
    exclusive: bool | None = None


@dataclass(frozen=True)
class QueuePage:
    """``filtered`` is the number of matching queues, ``None`` when a bounded scan
    stopped before the end; ``total`` counts every queue in scope (vhost or all)."""

    items: tuple[QueueRow, ...]
    query: QueueQuery
    total: int | None
    filtered: int | None
    fetched_at: datetime
    past_end: bool = False
    scan: ScanInfo | None = None
    requests: int = 1

    @property
    def page_count(self) -> int | None:
        if self.filtered is None:
            return None
        return max(1, -(-self.filtered // self.query.page_size))

    @property
    def has_next(self) -> bool:
        if self.page_count is not None:
            return self.query.page < self.page_count
        return len(self.items) == self.query.page_size


@dataclass(frozen=True)
class Consumer:
    queue: str
    vhost: str
    tag: str
    prefetch: int | None
    ack_required: bool | None
    exclusive: bool | None
    active: bool | None
    connection_name: str
    channel_name: str
    peer: str
    user: str
    celery_hostname: str | None = None


@dataclass(frozen=True)
class Binding:
    vhost: str
    source: str
    destination: str
    destination_type: str  # "queue" or "exchange"
    routing_key: str
    arguments: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class DeadLetterLink:
    """A queue at one end of a dead-letter route, and how the route is configured."""

    vhost: str
    queue: str
    exchange: str
    routing_key: str | None
    via: str  # "argument" or "policy"
    note: str = ""


@dataclass(frozen=True)
class QueueDetail:
    vhost: str
    name: str
    type: str
    state: str | None
    node: str | None
    durable: bool | None
    auto_delete: bool | None
    exclusive: bool | None
    arguments: Mapping[str, Any]
    policy: str | None
    operator_policy: str | None
    effective_policy: Mapping[str, Any]
    dead_letter_exchange: str | None
    dead_letter_routing_key: str | None
    dlx_source: str | None
    messages: int | None
    ready: int | None
    unacked: int | None
    message_bytes: int | None
    publish_rate: float | None
    deliver_rate: float | None
    ack_rate: float | None
    redeliver_rate: float | None
    head_message_timestamp: datetime | None
    idle_since: str | None
    consumers: tuple[Consumer, ...]
    bindings: tuple[Binding, ...]
    dead_letters_to: tuple[DeadLetterLink, ...]
    dead_letters_from: tuple[DeadLetterLink, ...]
    dead_letter_scan: ScanInfo | None
    fetched_at: datetime

    @property
    def head_message_age(self) -> float | None:
        if self.head_message_timestamp is None:
            return None
        return max(0.0, (self.fetched_at - self.head_message_timestamp).total_seconds())


@dataclass(frozen=True)
class ExchangeRow:
    vhost: str
    name: str
    type: str
    durable: bool | None
    auto_delete: bool | None
    internal: bool | None
    arguments: Mapping[str, Any] = field(default_factory=dict)
    publish_in_rate: float | None = None
    publish_out_rate: float | None = None


@dataclass(frozen=True)
class ExchangePage:
    items: tuple[ExchangeRow, ...]
    vhost: str | None
    page: int
    page_size: int
    name: str
    total: int | None
    filtered: int | None
    fetched_at: datetime
    past_end: bool = False

    @property
    def page_count(self) -> int | None:
        return None if self.filtered is None else max(1, -(-self.filtered // self.page_size))


@dataclass(frozen=True)
class ExchangeDetail:
    exchange: ExchangeRow
    policy: str | None
    bindings_out: tuple[Binding, ...]  # this exchange is the source
    bindings_in: tuple[Binding, ...]  # exchange-to-exchange bindings into this one
    fetched_at: datetime
    bindings_out_total: int = 0  # before the cut at MAX_BINDINGS
    bindings_in_total: int = 0

    @property
    def is_default(self) -> bool:
        """The default exchange: bound to every queue by name, bindings not listed."""
        return self.exchange.name == ""


@dataclass(frozen=True)
class Vhost:
    name: str
    description: str
    tracing: bool | None
    messages: int | None
    ready: int | None
    unacked: int | None
    publish_rate: float | None
    deliver_rate: float | None
    queues: int | None = None


# -- messages: peek, publish, purge ------------------------------------------------


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


@dataclass(frozen=True)
class OutgoingMessage:
    """A message to publish. ``properties`` keys are our AMQP property names (the values
    of ``brokers.rabbitmq.connection.PROPERTY_ATTRS``)."""

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
