"""Storing captured dead letters: idempotent, one transaction per batch.

The capture engines (``brokers.<kind>.deadletters``) call a sink's ``store`` and only
acknowledge (RabbitMQ) or commit offsets (Kafka) after it returns, that is
after the transaction below has committed.

Capture keys (unique per cluster, vhost and DLQ):

* **Kafka**: ``"<topic>:<partition>:<offset>"``. A record read again after a
  crash between our commit and the offset commit has the same key and is
  skipped (keys already stored are filtered out, and the insert ignores
  conflicts, ``INSERT OR IGNORE`` / ``ON CONFLICT DO NOTHING``): exact.
* **RabbitMQ**: the SHA-256 of the message's content (delivery exchange and
  routing key, every property, every header except the redelivery counters
  quorum queues add, and the body). A message id alone is not enough: the
  same message requeued and dead-lettered again must give a new row (part of
  the "failed again" verdict), and many publishers set no id. The content hash
  covers that, because ``x-death`` changes with every dead-lettering (its
  ``time`` and ``count``). Byte-identical messages do happen (a publisher
  sending the same payload without id or timestamp, expiring in the same
  second), and each must still get its row, so the key is the hash for the
  first such message and ``<hash>#<n>`` for the n-th. A delivery the broker
  marks ``redelivered`` may be a copy of a row stored just before a crash: it
  is matched ("claimed") against rows of this DLQ stored after the last batch
  whose ack was confirmed (``ManagedDeadLetterQueue.capture_acked_through``),
  at most once per row; any other delivery is a new row. Redelivered messages
  come first (a requeued message goes back to its place at the head of the
  queue and our consumer is exclusive), so the first fresh delivery ends the
  claiming for the session.

  What remains: if the collector dies after the broker confirmed an ack but
  before ``capture_acked_through`` moved (a few milliseconds per batch), and a
  byte-identical message was delivered but not yet stored at that moment, that
  message is taken for the stored one (one row for two identical messages).
  Messages that differ in any byte are never affected.

Bodies longer than ``MQB_DLQ_MAX_BODY`` keep their first ``MQB_DLQ_MAX_BODY``
bytes in ``DeadLetter.body`` (what pages decode and show) with
``body_truncated`` set, and every byte in ``DeadLetterBody``, written in the
same transaction: the rest is kept safely, for download and requeue, out of
the way of the list queries. Messages above ``MQB_DLQ_MAX_MESSAGE_BYTES`` are
not captured at all (the engine leaves them on the broker and says why).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, QuerySet
from django.utils import timezone

from brokers.base import NotSupported
from brokers.base.deadletters import (
    CapturedLetter,
    CaptureKeys,
    CaptureSink,
    DeadLetters,
    StoreResult,
)
from brokers.registry import kind_named
from dashboard.core.leader import fenced
from dashboard.deadletters.bulk_insert import insert_dead_letters
from dashboard.deadletters.celery_results import with_celery_exceptions
from dashboard.deadletters.loop_guard import flag_comebacks, is_poison, poison_after
from dashboard.deadletters.policies.engine import decide_before_insert, record_at_capture
from dashboard.deadletters.verdict import mark_failed_again
from dashboard.models import DeadLetter, DeadLetterBody, ManagedDeadLetterQueue

log = logging.getLogger(__name__)
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


@dataclass(frozen=True)
class CaptureTarget:
    """One managed DLQ, as the collector's capture loop knows it."""

    managed_id: int
    cluster_id: int
    slug: str
    kind: str
    vhost: str
    name: str


def capability(target: CaptureTarget) -> DeadLetters:
    found = kind_named(target.kind).deadletters
    if found is None:
        raise NotSupported(f"dead-letter queues of {target.kind} clusters are not supported")
    return found


def _clean(text: str, limit: int | None = None) -> str:
    # PostgreSQL text refuses NUL; broker data may hold anything.
    text = text.replace("\x00", "\ufffd")
    return text[:limit] if limit is not None else text


def _bounded(value: int | None, bounds: tuple[int, int]) -> int | None:
    return value if value is not None and bounds[0] <= value <= bounds[1] else None


@dataclass(frozen=True)
class RowLimits:
    """The settings ``build_row`` applies, read once per batch (a setting read costs
    a few microseconds, as much as a small part of a letter's row)."""

    max_body: int
    poison_after: int

    @classmethod
    def now(cls) -> RowLimits:
        return cls(max_body=settings.MQB_DLQ_MAX_BODY, poison_after=poison_after())


def build_row(
    target: CaptureTarget, letter: CapturedLetter, key: str, limits: RowLimits | None = None
) -> dict[str, Any]:
    """A DeadLetter row as ``{attname: value}`` (see ``bulk.insert_dead_letters``)."""
    info = letter.info
    limits = limits or RowLimits.now()
    limit = limits.max_body
    truncated = len(letter.body) > limit
    details: dict[str, Any] = {"conventions": list(info.conventions)}
    if info.notes:
        details["notes"] = [_clean(n) for n in info.notes]
    if info.task_name:
        details["task"] = {"name": _clean(info.task_name), "id": _clean(info.task_id)}
    if len(info.origin_routing_keys) > 1:
        details["routing_keys"] = [_clean(k) for k in info.origin_routing_keys[:100]]
    if info.component:
        details["component"] = _clean(info.component, 512)
    if info.wrapper_class or info.wrapper_message:
        # Spring: the letter shows the cause; the page also shows what wrapped it.
        details["wrapper"] = {
            "class": _clean(info.wrapper_class, 512),
            "message": _clean(info.wrapper_message),
        }
    if info.history:
        # Earlier failures of a record that failed again (repeated headers), newest first.
        details["history"] = [
            {k: _clean(v) if isinstance(v, str) else v for k, v in asdict(h).items()}
            for h in info.history
        ]
    return dict(
        cluster_id=target.cluster_id,
        vhost=target.vhost,
        dlq=target.name,
        capture_key=key,
        message_id=_clean(info.message_id, 512),
        origin_exchange=_clean(info.origin_exchange or "", 512),
        origin_routing_key=_clean(info.origin_routing_key, 512),
        origin_queue=_clean(info.origin_queue or "", 512),
        origin_topic=_clean(info.origin_topic or "", 512),
        origin_partition=_bounded(info.origin_partition, _INT32),
        origin_offset=_bounded(info.origin_offset, _INT64),
        reason=_clean(info.reason, 100),
        exception_class=_clean(info.exception_class, 512),
        exception_message=_clean(info.exception_message),
        fingerprint=info.fingerprint,
        failure_details=details,
        attempts=_bounded(info.attempts, _INT32) or _INT32[1],
        first_failed_at=info.first_failed_at,
        last_failed_at=info.last_failed_at,
        came_back=info.requeue_count,
        poison=is_poison(info.requeue_count, limits.poison_after),
        key=letter.key,
        headers=letter.headers,
        properties=letter.properties,
        body=letter.body[:limit] if truncated else letter.body,
        body_size=len(letter.body),
        body_truncated=truncated,
    )


def _rows_of(target: CaptureTarget) -> QuerySet[DeadLetter]:
    return DeadLetter.objects.filter(
        cluster_id=target.cluster_id, vhost=target.vhost, dlq=target.name
    )


def _insert(target: CaptureTarget, rows: list[dict[str, Any]], letters: dict[str, bytes]) -> None:
    """Insert ``rows`` and the full bodies of those that were cut; inside the transaction."""
    deadletters = capability(target)
    # Retry rules decide first: the rows they act on are inserted scheduled or parked.
    decided = decide_before_insert(target.cluster_id, rows)
    captured_at = insert_dead_letters(
        rows, ignore_conflicts=deadletters.capture_keys == CaptureKeys.EXACT
    )
    long_keys = [r["capture_key"] for r in rows if r["body_truncated"]]
    if long_keys:
        ids = _rows_of(target).filter(capture_key__in=long_keys).values_list("capture_key", "id")
        DeadLetterBody.objects.bulk_create(
            [DeadLetterBody(dead_letter_id=pk, data=letters[key]) for key, pk in ids],
            ignore_conflicts=True,
        )
    if mark_failed_again(target.cluster_id, deadletters.same_message, rows):
        # Only rows the verdict just linked to a requeued one can have come back.
        flag_comebacks(target.cluster_id, rows)
    record_at_capture(decided, captured_at)
    if rows:
        ManagedDeadLetterQueue.objects.filter(pk=target.managed_id).update(
            captured_count=F("captured_count") + len(rows),
            last_captured_at=timezone.now(),
            capture_error="",
            capture_error_at=None,
        )


def make_sink(target: CaptureTarget) -> CaptureSink:
    """The sink for the kind's capture keys: exact keys, or content hashes (see above)."""
    if capability(target).capture_keys == CaptureKeys.EXACT:
        return KafkaSink(target)
    return RabbitMQSink(target)


# -- exact keys (Kafka) ------------------------------------------------------------


def store_kafka_batch(target: CaptureTarget, letters: Sequence[CapturedLetter]) -> StoreResult:
    with transaction.atomic():
        keys = [letter.capture_key for letter in letters]
        found = _rows_of(target).filter(capture_key__in=keys)
        seen = set(found.values_list("capture_key", flat=True))
        rows, bodies = [], {}
        limits = RowLimits.now()
        for letter in letters:
            if letter.capture_key in seen:
                continue
            seen.add(letter.capture_key)
            rows.append(build_row(target, letter, letter.capture_key, limits))
            bodies[letter.capture_key] = letter.body
        _insert(target, rows, bodies)
    return StoreResult(inserted=len(rows), duplicates=len(letters) - len(rows))


class KafkaSink:
    def __init__(self, target: CaptureTarget) -> None:
        self.target = target

    async def begin(self) -> None:
        return None

    async def store(self, letters: Sequence[CapturedLetter]) -> StoreResult:
        # fenced: under a collector's lease, committed only while it leads
        result: StoreResult = await sync_to_async(
            fenced(store_kafka_batch), thread_sensitive=False
        )(self.target, letters)
        if result.duplicates:
            log.info("%s: %d record(s) read again were already stored", self.target.name,
                     result.duplicates)  # fmt: skip
        return result

    async def acknowledged(self, result: StoreResult) -> None:
        return None

    async def committed(self, positions: dict[int, int]) -> None:
        await sync_to_async(record_position, thread_sensitive=False)(self.target, positions)


def record_position(target: CaptureTarget, positions: dict[int, int]) -> None:
    """Remember, per partition, the offset capture committed: the DLQs page shows it."""
    with transaction.atomic():
        row = ManagedDeadLetterQueue.objects.select_for_update().filter(pk=target.managed_id)
        known = row.values_list("capture_position", flat=True).first()
        merged = dict(known) if isinstance(known, dict) else {}
        for partition, offset in positions.items():
            merged[str(partition)] = max(int(merged.get(str(partition)) or 0), offset)
        row.update(capture_position=merged)


# -- content hashes (RabbitMQ) -----------------------------------------------------


@dataclass
class RabbitMQSession:
    """What one consuming session remembers: rows that redeliveries may claim."""

    claimable: collections.Counter[str] = field(default_factory=collections.Counter)


def _content_hash(capture_key: str) -> str:
    return capture_key.split("#", 1)[0]


def load_claimable(target: CaptureTarget) -> collections.Counter[str]:
    """Rows of this DLQ stored after the last batch whose ack was confirmed."""
    through = (
        ManagedDeadLetterQueue.objects.filter(pk=target.managed_id)
        .values_list("capture_acked_through", flat=True)
        .first()
    )
    rows = _rows_of(target)
    if through is not None:
        rows = rows.filter(id__gt=through)
    return collections.Counter(_content_hash(k) for k in rows.values_list("capture_key", flat=True))


def _next_occurrences(target: CaptureTarget, batch: collections.Counter[str]) -> dict[str, int]:
    """The next free occurrence number of each content hash that needs more than "1".

    A hash needs a look at its ``#n`` keys when its first key is taken, or when
    it comes more than once in this batch (its first key may have been deleted
    while later ones remain).
    """
    rows = _rows_of(target)
    known = set(rows.filter(capture_key__in=list(batch)).values_list("capture_key", flat=True))
    following: dict[str, int] = {}
    for content in known | {h for h, n in batch.items() if n > 1}:
        # Byte-identical messages (rare): find the highest occurrence stored.
        later = rows.filter(capture_key__startswith=f"{content}#").values_list(
            "capture_key", flat=True
        )
        numbers = [int(k.rsplit("#", 1)[1]) for k in later if k.rsplit("#", 1)[1].isdigit()]
        following[content] = max(numbers, default=1 if content in known else 0) + 1
    return following


def store_rabbitmq_batch(
    target: CaptureTarget, session: RabbitMQSession, letters: Sequence[CapturedLetter]
) -> StoreResult:
    letters = with_celery_exceptions(letters)
    with transaction.atomic():
        following = _next_occurrences(
            target, collections.Counter(letter.capture_key for letter in letters)
        )
        claimable = session.claimable.copy()  # the session changes only if the commit happens
        rows, bodies, duplicates = [], {}, 0
        limits = RowLimits.now()
        for letter in letters:
            content = letter.capture_key
            if letter.redelivered and claimable[content] > 0:
                claimable[content] -= 1
                duplicates += 1
                continue
            if not letter.redelivered:
                claimable.clear()  # redeliveries come first: none is left to claim
            number = following.get(content, 1)
            following[content] = number + 1
            key = content if number == 1 else f"{content}#{number}"
            rows.append(build_row(target, letter, key, limits))
            bodies[key] = letter.body
        # No ignore_conflicts: the keys were computed under an exclusive consumer,
        # so a conflict is a bug that must fail the batch (and leave it on the
        # broker), never silently drop a message.
        _insert(target, rows, bodies)
    session.claimable = +claimable
    return StoreResult(inserted=len(rows), duplicates=duplicates)


def confirm_acked(target: CaptureTarget) -> None:
    """Every row of this DLQ is now acknowledged on the broker."""
    newest = _rows_of(target).aggregate(newest=Max("id"))["newest"]
    if newest is not None:
        ManagedDeadLetterQueue.objects.filter(pk=target.managed_id).update(
            capture_acked_through=newest
        )


class RabbitMQSink:
    def __init__(self, target: CaptureTarget) -> None:
        self.target = target
        self.session = RabbitMQSession()

    async def begin(self) -> None:
        claimable = await sync_to_async(load_claimable, thread_sensitive=False)(self.target)
        self.session = RabbitMQSession(claimable)

    async def store(self, letters: Sequence[CapturedLetter]) -> StoreResult:
        # fenced: a refused batch rolls back and ends the capture; this sink (and the
        # session it changed) is dropped with it, the next engine loads its own.
        result: StoreResult = await sync_to_async(
            fenced(store_rabbitmq_batch), thread_sensitive=False
        )(self.target, self.session, letters)
        if result.duplicates:
            log.info("%s: %d redelivered message(s) were already stored", self.target.name,
                     result.duplicates)  # fmt: skip
        return result

    async def acknowledged(self, result: StoreResult) -> None:
        # While earlier rows may still be claimed by redeliveries, they must stay
        # claimable: the mark moves only once nothing is left to claim.
        if not self.session.claimable:
            await sync_to_async(confirm_acked, thread_sensitive=False)(self.target)
