"""Typed request and response schemas of the RabbitMQ JSON API, and results made JSON-ready.

Null is unknown (not asked for, or the broker did not say), never zero.
AMQP values JSON cannot carry are tagged, the same way the publish endpoint
reads them: ``{"$bytes": base64}``, ``{"$decimal": "1.50"}`` and, inside
headers, ``{"$timestamp": ISO 8601}``. :func:`plain` makes the service results
(frozen dataclasses) into that data; the schemas below validate it on the way
out.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from ninja import Field, Schema
from pydantic import (
    BaseModel,
    BeforeValidator,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from dashboard.core.api import DateTimeText, ErrorOut, Out, QueryInt, invalid
from dashboard.core.schemas import DeathEventOut

QueueType = Literal["classic", "quorum", "stream"]
DlxSource = Literal["argument", "policy"]
QueueSort = Literal[
    "name", "depth", "ready", "unacked", "consumers", "publish_rate", "deliver_rate"
]
QueueState = Literal["running", "idle", "flow", "down", "crashed", "stopped", "minority"]
BodyFormat = Literal["null", "empty", "json", "msgpack", "celery", "protobuf", "text", "binary"]

AMQP_TABLE = (
    'AMQP values JSON lacks are tagged: {"$bytes": base64}, {"$decimal": "1.5"},'
    ' {"$timestamp": ISO 8601}; null is void'
)
TRUE_TEXT = "1, true, on or yes"


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


# Query parameters where an empty value means the default (a blank field of an HTML
# form sends ``sort=``): the document lists "" with the values.
Blank = Literal[""]
# The dead-letter filter, in any case.
DlxFilter = Annotated[Literal["yes", "no", "any"] | Blank | None, BeforeValidator(_lower)]


# -- requests --------------------------------------------------------------------------


class QueueListQuery(Schema):
    """Filters of the queue list; type, state and dlx are applied by a bounded scan."""

    vhost: str | None = Field(None, description="only this vhost (default: all)")
    page: QueryInt = Field(
        None,
        description="1-based; past the end answers past_end=true; empty: the default (1)",
        json_schema_extra={"minimum": 1, "maximum": 1_000_000},
    )
    page_size: QueryInt = Field(
        None,
        description="rows per page (outside 1-500: 400); empty: the default (100)",
        json_schema_extra={"minimum": 1, "maximum": 500},
    )
    sort: QueueSort | Blank | None = Field(None, description="column; empty: the default (name)")
    reverse: str | None = Field(None, description=f"{TRUE_TEXT}: descending")
    name: str | None = Field(
        None, description="case-insensitive substring of the name (or a regex with regex=1)"
    )
    regex: str | None = Field(None, description=f"{TRUE_TEXT}: name is a regular expression")
    type: QueueType | Blank | None = Field(
        None, description="only this queue type (empty: all); applied by a bounded scan"
    )
    live: str | None = Field(
        None,
        description=f"{TRUE_TEXT}: read RabbitMQ now instead of the collector's latest sample",
    )
    state: QueueState | Blank | None = Field(
        None, description="only queues in this state (empty: all); applied by a bounded scan"
    )
    dlx: DlxFilter = Field(
        None,
        description="yes or no: has a dead-letter exchange (any or empty: both; any case);"
        " applied by a bounded scan",
    )
    stats: str | None = Field(
        None, description=f"{TRUE_TEXT}: also consumers, policy and rates (about twice the cost)"
    )


class ExchangeListQuery(Schema):
    vhost: str | None = Field(None, description="only this vhost (default: all)")
    name: str | None = Field(None, description="case-insensitive substring")
    page: QueryInt = Field(
        None,
        description="1-based; empty: the default (1)",
        json_schema_extra={"minimum": 1, "maximum": 1_000_000},
    )
    page_size: QueryInt = Field(
        None,
        description="rows per page (outside 1-500: 400); empty: the default (100)",
        json_schema_extra={"minimum": 1, "maximum": 500},
    )


class EntityQuery(Schema):
    """Names go in the query string: they may hold ``/``, ``%``, spaces or anything else."""

    vhost: str = Field(description="vhost name, any characters (URL-encoded)")
    name: str = Field(
        description="queue or exchange name, any characters; empty for the default exchange"
    )


class QueueBodyIn(BaseModel):
    """A request body: a JSON object.

    A pydantic model, not a ninja ``Schema``: a Schema reads its input attribute by
    attribute, so a list or null would pass for an object.
    """

    @model_validator(mode="before")
    @classmethod
    def _object(cls, value: object) -> object:
        if not isinstance(value, dict):
            raise invalid("the body must be a JSON object")
        return value


class PeekIn(QueueBodyIn):
    count: StrictInt = Field(
        10,
        description="messages to read, from 1 to MQB_RABBITMQ_PEEK_MAX",
        json_schema_extra={"minimum": 1},
    )
    confirm: StrictBool = Field(
        False,
        description="the user confirmed that the peek requeues (and may reorder) the messages",
    )

    @field_validator("count", mode="before")
    @classmethod
    def _whole(cls, value: object) -> object:
        if not isinstance(value, int) or isinstance(value, bool):
            raise invalid("count must be a whole number")
        return value

    @field_validator("confirm", mode="before")
    @classmethod
    def _yes_or_no(cls, value: object) -> object:
        if not isinstance(value, bool):  # null or "yes" is not a confirmation
            raise invalid("confirm must be true or false")
        return value


class QueuePurgeIn(QueueBodyIn):
    confirm_name: str | None = Field(None, description="the queue name, on protected clusters")


class PublishIn(QueueBodyIn):
    """Missing or null fields are their defaults; the values are checked as a form's are."""

    vhost: str
    exchange: str | None = Field("", description="empty or null: the default exchange")
    routing_key: str | None = ""
    body: str | None = ""
    body_encoding: Literal["text", "json", "base64"] | None = "text"
    headers: dict[str, Any] | str | None = Field(
        None, description=f"an object, or its JSON text; {AMQP_TABLE}"
    )
    properties: dict[str, Any] | None = Field(
        None,
        description="content_type, content_encoding, delivery_mode (1|2), priority,"
        " correlation_id, reply_to, expiration (ms), message_id, timestamp (ISO, epoch s or"
        " 'now'), type, user_id, app_id",
    )

    @field_validator("body_encoding", mode="before")
    @classmethod
    def _encoding(cls, value: object) -> object:
        if value is not None and value not in ("text", "json", "base64"):
            raise invalid("body_encoding must be one of text, json, base64")
        return value


# -- responses -------------------------------------------------------------------------


class ScanOut(Out):
    """Present when mqboard read the list itself (type/state/DLX filters)."""

    scanned: int
    limit: int
    complete: bool = Field(description="every queue in scope was read")
    requests: int


class QueueRowOut(Out):
    """Null is unknown (consumers and rates need stats=1 or a stats sort)."""

    vhost: str
    name: str
    type: QueueType
    state: str | None
    messages: int | None
    ready: int | None
    unacked: int | None
    consumers: int | None
    publish_rate: float | None = Field(description="messages per second")
    deliver_rate: float | None = Field(description="messages per second")
    dead_letter_exchange: str | None
    dlx_source: DlxSource | None
    policy: str | None
    durable: bool | None
    auto_delete: bool | None
    exclusive: bool | None


class QueueQueryOut(Out):
    """The query the page was computed with, defaults filled in."""

    vhost: str | None
    page: int
    page_size: int
    sort: QueueSort
    reverse: bool
    name: str
    regex: bool
    type: QueueType | None
    state: QueueState | None
    has_dlx: bool | None
    stats: bool
    scan_limit: int = Field(description="queues a type/state/DLX filter may read")


class QueuePageOut(Out):
    items: list[QueueRowOut]
    query: QueueQueryOut
    total: int | None = Field(description="every queue in scope (the vhost, or all)")
    filtered: int | None = Field(description="matching queues; null when a scan stopped early")
    fetched_at: DateTimeText
    past_end: bool = Field(description="the page asked for is past the end")
    scan: ScanOut | None = Field(
        description="present when mqboard read the list itself (type/state/DLX filters)"
    )
    requests: int = Field(description="management API requests made")
    page_count: int | None
    has_next: bool
    source: Literal["snapshot", "live"] = Field(
        description="snapshot: the collector's latest sample; live: read from RabbitMQ now"
    )
    as_of: DateTimeText = Field(description="when the numbers were read")
    live_reason: str = Field(description="why the list was read live (empty from a snapshot)")


class ConsumerOut(Out):
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
    celery_hostname: str | None = Field(description="from the worker's pidbox consumer")


class BindingOut(Out):
    vhost: str
    source: str = Field(description="the exchange; empty for the default exchange")
    destination: str
    destination_type: Literal["queue", "exchange"]
    routing_key: str
    arguments: dict[str, Any] = Field(description=AMQP_TABLE)


class DeadLetterLinkOut(Out):
    """A queue at one end of a dead-letter route, and how the route is configured."""

    vhost: str
    queue: str = Field(description="empty when the route ends nowhere")
    exchange: str
    routing_key: str | None
    via: DlxSource
    note: str


class QueueDetailOut(Out):
    vhost: str
    name: str
    type: QueueType
    state: str | None
    node: str | None
    durable: bool | None
    auto_delete: bool | None
    exclusive: bool | None
    arguments: dict[str, Any] = Field(description=AMQP_TABLE)
    policy: str | None
    operator_policy: str | None
    effective_policy: dict[str, Any]
    dead_letter_exchange: str | None
    dead_letter_routing_key: str | None
    dlx_source: DlxSource | None
    messages: int | None
    ready: int | None
    unacked: int | None
    message_bytes: int | None
    publish_rate: float | None = Field(description="messages per second")
    deliver_rate: float | None = Field(description="messages per second")
    ack_rate: float | None = Field(description="messages per second")
    redeliver_rate: float | None = Field(description="messages per second")
    head_message_timestamp: DateTimeText | None
    idle_since: str | None
    consumers: list[ConsumerOut]
    bindings: list[BindingOut]
    dead_letters_to: list[DeadLetterLinkOut]
    dead_letters_from: list[DeadLetterLinkOut]
    dead_letter_scan: ScanOut | None
    fetched_at: DateTimeText
    head_message_age: float | None = Field(description="seconds, at fetched_at")


class ExchangeOut(Out):
    vhost: str
    name: str = Field(description="empty for the default exchange")
    type: str
    durable: bool | None
    auto_delete: bool | None
    internal: bool | None
    arguments: dict[str, Any] = Field(description=AMQP_TABLE)
    publish_in_rate: float | None = Field(description="messages per second")
    publish_out_rate: float | None = Field(description="messages per second")


class ExchangePageOut(Out):
    items: list[ExchangeOut]
    vhost: str | None
    page: int
    page_size: int
    name: str = Field(description="the name filter")
    total: int | None
    filtered: int | None
    fetched_at: DateTimeText
    past_end: bool = Field(description="the page asked for is past the end")
    page_count: int | None


class ExchangeDetailOut(Out):
    exchange: ExchangeOut
    policy: str | None
    bindings_out: list[BindingOut] = Field(description="this exchange is the source")
    bindings_in: list[BindingOut] = Field(description="exchange-to-exchange bindings into it")
    fetched_at: DateTimeText
    bindings_out_total: int = Field(description="before the list was cut")
    bindings_in_total: int = Field(description="before the list was cut")
    is_default: bool = Field(description="bound to every queue by name; bindings not listed")


class VhostOut(Out):
    name: str
    description: str
    tracing: bool | None
    messages: int | None
    ready: int | None
    unacked: int | None
    publish_rate: float | None = Field(description="messages per second")
    deliver_rate: float | None = Field(description="messages per second")
    queues: int | None


class VhostsOut(Out):
    vhosts: list[VhostOut]


class HeaderRowOut(Out):
    """One row of a header table, made fit to show."""

    key: str
    type_name: str
    display: str
    as_int: int | None = Field(description="set for binary integers")


class CeleryTaskOut(Out):
    """args and kwargs are null when the body could not be decoded (pickle, YAML, too large)."""

    name: str
    id: str
    args: list[Any] | None
    kwargs: dict[str, Any] | None
    retries: int | None
    eta: DateTimeText | None
    expires: DateTimeText | None
    root_id: str | None
    parent_id: str | None
    group: str | None
    origin: str | None
    protocol: int
    argsrepr: str | None
    kwargsrepr: str | None


class DecodedOut(Out):
    format: BodyFormat
    text: str | None = Field(
        description="a rendering for display, at most the display limit; null when the"
        " body is sent as text (body_encoding utf-8): the body is its own rendering"
    )
    truncated: bool
    note: str
    celery: CeleryTaskOut | None


class PeekedMessageOut(Out):
    position: int = Field(description="1-based, in the order the broker handed them out")
    size: int = Field(description="bytes")
    exchange: str
    routing_key: str
    redelivered: bool
    properties: dict[str, Any]
    headers: dict[str, Any] = Field(description=AMQP_TABLE)
    header_rows: list[HeaderRowOut]
    x_death: list[DeathEventOut]
    decoded: DecodedOut
    body_encoding: Literal["utf-8", "base64"] | None = Field(
        description="utf-8: body is the bytes as text; base64: they are not UTF-8;"
        " null: over the display limit (use download_url)"
    )
    body: str | None = Field(description="the whole body, when within the display limit")
    download_url: str | None = Field(description="every byte, for this session, for a while")


class PeekOut(Out):
    vhost: str
    queue: str
    queue_type: QueueType
    requested: int
    remaining: int | None = Field(description="ready messages after the last read")
    destructive: bool = Field(description="false only for streams, read by offset")
    fetched_at: DateTimeText
    display_limit: int
    kept_for_download: bool
    download_note: str = Field(description="why the bodies were not kept, else empty")
    messages: list[PeekedMessageOut]


class PeekRefusedOut(ErrorOut):
    """A refused peek (409); a delivery limit refusal (code delivery_limit) says which."""

    delivery_limit: int | None = Field(None, description="deliveries before dead-lettering")
    delivery_limit_source: str | None = Field(
        None, description="argument, policy, argument and policy, or RabbitMQ 4 default"
    )


class PurgeOut(Out):
    vhost: str
    queue: str
    purged: int
    ready_before: int | None = Field(description="exact: read just before the purge")
    unacked_before: int | None = Field(description="from statistics that may lag a few seconds")


class PublishOut(Out):
    vhost: str
    exchange: str
    routing_key: str
    size: int = Field(description="bytes")
    message_id: str | None
    confirmed: bool


# -- results as JSON-ready data --------------------------------------------------------

# Properties returned next to a result's fields.
EXTRA = {
    "QueuePage": ("page_count", "has_next"),
    "QueueDetail": ("head_message_age",),
    "ExchangePage": ("page_count",),
    "ExchangeDetail": ("is_default",),
}


def plain(value: Any, *, amqp: bool = False) -> Any:
    """Results as JSON-ready data. ``amqp`` tags timestamps too (header tables)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in EXTRA.get(type(value).__name__, ()):
            data[name] = plain(getattr(value, name))
        return data
    if isinstance(value, datetime):
        return {"$timestamp": value.isoformat()} if amqp else value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v, amqp=amqp) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, amqp=amqp) for v in value]
    return value
