"""Typed request and response schemas of the dead-letter JSON API (dashboard.deadletters.api).

Response schemas derive from :class:`~dashboard.core.api.Out`: a key the code
sends that is not declared here fails a test. Times are the ISO 8601 text the
code makes. Request bodies declare the documented types; where the checks and
their messages predate the typed API (letter ids, rate limits, filter times and
statuses), a field is documented by its type but left to the same parsing as
before (``SkipValidation``, ``WithJsonSchema``), so answers and messages stay.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from ninja import Field, Schema
from pydantic import BaseModel, SkipValidation, WithJsonSchema

from dashboard.core.api import DateTimeText, Out
from dashboard.core.params import PAGE_MAX
from dashboard.core.schemas import DeathEventOut

MAX_ID = 2**63 - 1  # SQLite's and PostgreSQL's largest integer key
MAX_RATE = 1_000_000

Status = Literal[
    "pending", "requeued", "discarded", "failed_again", "requeue_failed", "requeuing", "scheduled"
]
STATUS_TEXT = "pending, requeuing, requeued, discarded, failed_again, requeue_failed, scheduled"


class In(BaseModel):
    """Base of request bodies: a JSON object (ninja's Schema would also take other values)."""


# -- dead-letter queues ----------------------------------------------------------------


class DeadLetterSourceOut(Out):
    """A queue (or topic) whose dead letters land in this DLQ."""

    name: str
    via: Literal["argument", "policy", "name", "managed"] = Field(
        description="how its dead-letter exchange is set, or how it was guessed"
    )
    exchange: str | None = Field(description="the dead-letter exchange")
    routing_key: str | None = Field(description="dead-letter routing key; null: the message's own")
    note: str


class ManagedStateOut(Out):
    """Set when mqboard captures this DLQ into its database."""

    managed_by: str
    managed_at: DateTimeText
    captured_count: int
    last_captured_at: DateTimeText | None
    capture_error: str = Field(description="why capture is not running, if so")
    capture_error_at: DateTimeText | None
    positions: list[tuple[int, int]] = Field(
        default_factory=list,
        description="Kafka: (partition, offset capture committed) pairs; empty elsewhere",
    )


class DeadLetterQueueOut(Out):
    name: str
    vhost: str | None = Field(description="null where the broker kind has no vhosts (Kafka)")
    depth: int | None = Field(description="messages waiting (Kafka: records kept); null: unknown")
    found_by: list[Literal["dead-letter exchange", "name", "configured", "managed"]]
    sources: list[DeadLetterSourceOut]
    type: str = Field(description="classic, quorum, stream, or topic; empty: not known")
    exists: bool
    capturable: bool = Field(description="false for streams")
    managed: ManagedStateOut | None


class ClusterDeadLetterQueuesOut(Out):
    slug: str
    name: str
    kind: str = Field(description="the broker kind, e.g. rabbitmq or kafka")
    read_only: bool
    error: str | None = Field(description="the cluster could not be asked")
    checked_at: DateTimeText | None
    scanned: int = Field(description="queues or topics read")
    complete: bool = Field(description="false: stopped at the scan limit")
    notes: list[str]
    dlqs: list[DeadLetterQueueOut]


class DeadLetterQueuesOut(Out):
    clusters: list[ClusterDeadLetterQueuesOut] = Field(description="one entry per cluster")


class DeadLetterQueueTarget(In):
    cluster: str = Field(description="cluster slug")
    vhost: str | None = Field(None, description="RabbitMQ vhost; ignored on Kafka")
    name: str = Field(description="queue or topic name")


class ManagedOut(Out):
    managed: bool
    changed: bool = Field(description="false: it already was in that state")


# -- the inbox -----------------------------------------------------------------------

# Filter values are parsed by InboxFilter.from_params (its messages name the field).
Moment = Annotated[
    str | None,
    WithJsonSchema(
        {"anyOf": [{"type": "string", "format": "date-time"}, {"const": ""}, {"type": "null"}]}
    ),
]
StatusText = Annotated[
    str | None,
    WithJsonSchema({"anyOf": [{"enum": [*get_args(Status), ""]}, {"type": "null"}]}),
]
MOMENT_TEXT = "; without an offset, the dashboard's time zone; empty: no bound"


class InboxFilterIn(In):
    """The inbox filter; every field is optional (empty or null means any)."""

    cluster: str | None = Field(None, description="cluster slug")
    dlq: str | None = Field(None, description="the DLQ (queue or topic) name")
    origin: str | None = Field(
        None, description="substring of origin exchange, routing key, queue or topic"
    )
    reason: str | None = Field(None, description="substring of the reason or exception class")
    status: StatusText = Field(None, description=STATUS_TEXT)
    since: Moment = Field(None, description="captured at or after (ISO 8601)" + MOMENT_TEXT)
    until: Moment = Field(None, description="captured at or before (ISO 8601)" + MOMENT_TEXT)
    text: str | None = Field(None, description="substring of the exception message or message id")
    group: str | None = Field(None, description="a group's fingerprint")
    poison: bool | None = Field(None, description="only letters flagged poison (the loop guard)")
    parked: bool | None = Field(None, description="only letters a retry policy parked")


QueryMoment = Annotated[
    str, WithJsonSchema({"anyOf": [{"type": "string", "format": "date-time"}, {"const": ""}]})
]
QueryStatus = Annotated[str, WithJsonSchema({"enum": [*get_args(Status), ""]})]
# Parsed by dashboard.core.params.parse_page, whose message names the parameter.
QueryPage = Annotated[
    str,
    WithJsonSchema(
        {"anyOf": [{"type": "integer", "minimum": 1, "maximum": PAGE_MAX}, {"const": ""}]}
    ),
]


class InboxQuery(Schema):
    """The inbox filter as query parameters; empty means any."""

    cluster: str = Field("", description="cluster slug")
    dlq: str = Field("", description="the DLQ (queue or topic) name")
    origin: str = Field("", description="substring of origin exchange, routing key, queue or topic")
    reason: str = Field("", description="substring of the reason or exception class")
    status: QueryStatus = Field("", description=STATUS_TEXT)
    since: QueryMoment = Field("", description="captured at or after (ISO 8601)" + MOMENT_TEXT)
    until: QueryMoment = Field("", description="captured at or before (ISO 8601)" + MOMENT_TEXT)
    text: str = Field("", description="substring of the exception message or message id")
    group: str = Field("", description="a group's fingerprint")
    poison: bool = Field(False, description="only letters flagged poison (the loop guard)")
    parked: bool = Field(False, description="only letters a retry policy parked")
    page: QueryPage = Field("", description="empty: the first")


class DeadLetterGroupOut(Out):
    """Dead letters with one fingerprint: same origin, reason and exception."""

    cluster: str
    fingerprint: str
    origin: str = Field(description="where they came from, in words")
    vhost: str | None = Field(description="null where the broker kind has no vhosts (Kafka)")
    dlq: str = Field(description="one of the DLQs the group's letters were captured from")
    dlqs: int = Field(description="how many DLQs the group's letters were captured from")
    origin_exchange: str
    origin_routing_key: str
    origin_queue: str
    origin_topic: str
    reason: str
    exception_class: str
    exception_message: str
    count: int = Field(
        description="pending + scheduled + requeuing + requeued + requeue_failed + discarded"
    )
    pending: int
    scheduled: int = Field(description="waiting for their due time in a scheduled requeue")
    requeuing: int = Field(description="claimed by a requeue in progress")
    requeued: int = Field(description="requeued, including those that came back")
    failed_again: int = Field(description="requeued ones that dead-lettered again")
    requeue_failed: int = Field(description="a requeue was tried and failed")
    discarded: int
    claimable: int = Field(
        description="what a group requeue takes now (pending or requeue_failed): "
        "send it as expect, with last_id as upto"
    )
    poison_count: int = Field(description="letters flagged poison (came back too often)")
    poison_claimable: int = Field(description="of the claimable ones, those flagged poison")
    last_id: int = Field(description="the group's highest letter id")
    first_seen: DateTimeText | None = Field(description="earliest failure (else capture) time")
    last_seen: DateTimeText | None = Field(description="latest failure (else capture) time")


class OriginOut(Out):
    label: str = Field(description="where the letter came from, in words")
    exchange: str
    routing_key: str
    queue: str
    topic: str
    partition: int | None
    offset: int | None


class DeadLetterOut(Out):
    id: int
    cluster: str
    vhost: str | None = Field(description="null where the broker kind has no vhosts (Kafka)")
    dlq: str
    message_id: str
    key: str | None = Field(description="Kafka key, base64")
    origin: OriginOut
    reason: str
    exception_class: str
    exception_message: str
    fingerprint: str
    attempts: int
    first_failed_at: DateTimeText | None
    last_failed_at: DateTimeText | None
    captured_at: DateTimeText | None
    status: Status
    requeue_count: int
    last_error: str = Field(description="why the last requeue failed")
    acted_at: DateTimeText | None
    failed_again_as: int | None = Field(description="the letter it became when it came back")
    came_back: int = Field(description="times the message was requeued and came back")
    poison: bool = Field(description="came back MQB_DEADLETTER_POISON_AFTER times or more")
    parked: bool = Field(description="a retry policy stopped retrying it")
    due_at: DateTimeText | None = Field(description="when a scheduled requeue sends it")
    schedule: int | None = Field(description="the scheduled requeue that holds or sent it")
    body_size: int
    body_truncated: bool


class DeadLetterGroupsOut(Out):
    page: int
    pages: int
    count: int
    items: list[DeadLetterGroupOut]


class DeadLettersOut(Out):
    page: int
    pages: int
    count: int
    items: list[DeadLetterOut]


class BodyOut(Out):
    format: Literal["null", "empty", "json", "msgpack", "celery", "protobuf", "text", "binary"]
    text: str = Field(description="what to display, cut at the display limit")
    note: str
    size: int = Field(description="bytes")
    truncated: bool
    download: str = Field(description="URL of the full body")


class HeaderOut(Out):
    key: str
    type_name: str
    display: str
    as_int: int | None = Field(description="set for binary integers")


class AuditOut(Out):
    time: DateTimeText | None
    user: str | None
    action: str
    outcome: str
    detail: str
    parameters: dict[str, Any]


class DeadLetterDetailOut(DeadLetterOut):
    """One dead letter: decoded body, headers, x-death, actions taken."""

    headers: dict[str, Any] | list[Any] = Field(
        description="as captured: an object (RabbitMQ) or [key, value] pairs (Kafka)"
    )
    properties: dict[str, Any]
    failure_details: dict[str, Any]
    body: BodyOut
    decoded_headers: list[HeaderOut]
    x_death: list[DeathEventOut]
    audit: list[AuditOut]


# Edited headers as the inbox form sends them (a JSON text) or as JSON.
HeadersIn = Annotated[
    Any,
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "object"},
                {"type": "array", "items": {"type": "array"}},
                {"type": "string"},
                {"type": "null"},
            ],
            "description": "edited headers: object (RabbitMQ), [[k, v]] (Kafka)",
        }
    ),
]


class RequeueIn(In):
    """All optional: empty sends the letter as captured to its origin."""

    exchange: str | None = Field(None, description="RabbitMQ target exchange ('' = default)")
    routing_key: str | None = None
    topic: str | None = Field(None, description="Kafka target topic")
    body: str | None = Field(None, description="edited body (validated when the letter is JSON)")
    body_encoding: Literal["text", "msgpack", "base64", "hex"] | None = Field(
        None,
        description="how body is written: text (UTF-8, the default), msgpack (JSON that is "
        "sent as MessagePack), base64 or hex (any bytes)",
    )
    headers: HeadersIn = None


class RequeuedOut(Out):
    id: int
    status: Status
    sent: bool
    message: str


class UnroutableOut(Out):
    error: str = Field(description="why it was not sent")
    code: Literal["unroutable"]
    id: int
    status: Status
    sent: bool


class ReleasedOut(Out):
    id: int
    status: Literal["pending"]


# Checked by the operations (their messages name the field), documented here.
LetterIds = SkipValidation[list[Annotated[int, Field(ge=1, le=MAX_ID)]]]
RateLimit = Annotated[
    Any,
    WithJsonSchema(
        {
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": MAX_RATE,
            "description": "messages per second; null or 0 for the default (MQB_DLQ_REQUEUE_RATE)",
        }
    ),
]


class DiscardIn(In):
    ids: LetterIds = Field(min_length=1)


class DiscardedOut(Out):
    discarded: int = Field(description="how many changed")


class SelectionIn(In):
    """``ids`` or ``filter`` (ids win when both are given)."""

    ids: LetterIds | None = None
    filter: InboxFilterIn | None = Field(None, description="the inbox filter fields")


class PurgedOut(Out):
    purged: int = Field(description="how many were deleted")


class BulkRequeueIn(SelectionIn):
    rate_limit: RateLimit = None
    expect: int | None = Field(
        None, ge=0, le=MAX_ID, description="how many letters confirmed; another count refuses"
    )
    upto: int | None = Field(
        None, ge=1, le=MAX_ID, description="leave out letters with a higher id"
    )


class JobOfRequeueOut(Out):
    """The bulk requeue's job, as /api/jobs/{job_id} answers it."""

    id: int
    kind: str
    cluster: str | None
    state: Literal["queued", "running", "paused", "cancelled", "done", "failed"]
    created_by: str | None
    created_at: DateTimeText | None
    started_at: DateTimeText | None
    finished_at: DateTimeText | None
    progress_at: DateTimeText | None = Field(description="the worker's last report")
    parameters: dict[str, Any]
    rate_limit: float | None
    total: int | None = Field(description="frozen when the job starts")
    done: int
    failed: int
    rate: float | None = Field(description="messages per second")
    verdict: str
    result: dict[str, Any] = Field(description="the exact outcome")
    counts: dict[str, int] = Field(
        default_factory=dict, description="requeued, came_back: read from the letters now"
    )
    url: str = Field(description="the job's page")


class BulkRequeueOut(Out):
    job: JobOfRequeueOut
