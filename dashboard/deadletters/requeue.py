"""Requeueing and discarding dead letters, one at a time or a selection.

``do_requeue_dead_letter`` sends one letter back to its origin (or to a target
the user picks), optionally with an edited body and headers, and only then
marks the row ``requeued``. The row is claimed first by a conditional UPDATE
from ``pending``/``requeue_failed`` to ``requeuing``: a second click, a second
tab or a bulk job racing the same row gets ``AlreadyHandled`` and sends
nothing. An unroutable message or unknown topic leaves the row in the inbox as
``requeue_failed`` with ``last_error``; any other broker error puts the row
back as it was and propagates (the page says the broker is unreachable).

Limitation: if the process dies between the broker's confirm and the final
UPDATE, the row stays ``requeuing`` (the message was sent at most once); the
inbox shows it under that status.

``do_requeue_many`` requeues a small selection in the request (the admin action).
Discarding is in ``discard.py``.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from brokers.base import BrokerError, validate
from brokers.base.deadletters import Unroutable
from brokers.decode.body import media_type
from brokers.kafka import KafkaBroker
from brokers.kafka.deadletters.requeue import KafkaLetter, kafka_record, requeue_kafka
from brokers.rabbitmq.deadletters.requeue import AmqpLetter, requeue_rabbitmq
from dashboard.core.audit import record
from dashboard.core.clusters import get_cluster_config
from dashboard.core.params import InvalidInput
from dashboard.core.roles import OPERATOR
from dashboard.deadletters.common import User, require_role
from dashboard.deadletters.inbox import audit_target
from dashboard.models import AuditEntry, DeadLetter

REQUEUING = "requeuing"
CLAIMABLE = (DeadLetter.Status.PENDING, DeadLetter.Status.REQUEUE_FAILED)
MAX_DIFF_LINES = 400


class AlreadyHandled(InvalidInput):
    """The letter is not pending any more (requeued, being requeued, discarded)."""


@dataclass(frozen=True)
class RequeueTarget:
    """Where to send instead of the origin: an exchange and routing key, or a topic."""

    exchange: str | None = None
    routing_key: str | None = None
    topic: str | None = None


@dataclass(frozen=True)
class Edit:
    """An edited body (bytes) and/or headers (RabbitMQ: object; Kafka: [[key, value], ...])."""

    body: bytes | None = None
    headers: Any = None


@dataclass(frozen=True)
class RequeueResult:
    letter_id: int
    status: str
    sent: bool
    message: str


class Letter(Protocol):
    """What sending needs of a dead letter: a ``DeadLetter`` or a lighter row of its fields."""

    @property
    def body(self) -> bytes | memoryview: ...
    @property
    def body_truncated(self) -> bool: ...
    @property
    def failure_details(self) -> Any: ...
    @property
    def origin_queue(self) -> str: ...
    @property
    def origin_exchange(self) -> str: ...
    @property
    def origin_routing_key(self) -> str: ...
    @property
    def origin_topic(self) -> str: ...
    @property
    def origin_partition(self) -> int | None: ...
    @property
    def key(self) -> bytes | memoryview | None: ...
    @property
    def properties(self) -> Any: ...
    @property
    def headers(self) -> Any: ...


def full_body(letter: Letter) -> bytes:
    if letter.body_truncated:
        full = getattr(letter, "full_body", None)
        if full is not None:
            return bytes(full.data)
    return bytes(letter.body)


def rabbitmq_destination(letter: Letter, target: RequeueTarget | None) -> tuple[str, str]:
    if target is not None and (target.exchange is not None or target.routing_key is not None):
        return target.exchange or "", target.routing_key or ""
    if letter.failure_details.get("task") and letter.origin_queue:
        # A Celery task goes straight back to the queue its worker reads.
        return "", letter.origin_queue
    if letter.origin_exchange or letter.origin_routing_key:
        return letter.origin_exchange, letter.origin_routing_key
    if letter.origin_queue:
        return "", letter.origin_queue
    raise InvalidInput("unknown origin: choose a target exchange and routing key")


def value_is_null(letter: Letter) -> bool:
    """A Kafka record captured with a null value (stored as an empty body plus this flag)."""
    props = letter.properties
    return isinstance(props, dict) and props.get("value_null") is True


def kafka_letter(
    letter: Letter, topic: str, *, body: bytes | None = None, headers: Any = None
) -> KafkaLetter:
    """What to produce for a Kafka letter: its key and value as captured (null stays null)
    unless ``body``/``headers`` replace them; a keyless record back to its original
    partition when it goes back to its origin topic."""
    null = value_is_null(letter)
    # The page shows a null value as an empty body: sending that back unchanged is not an edit.
    edited = body is not None and not (null and body == b"")
    value = body if edited else None if null else full_body(letter)
    key = bytes(letter.key) if letter.key is not None else None
    original = letter.origin_partition if topic == letter.origin_topic else None
    return kafka_record(
        topic, key, value, letter.headers if headers is None else headers, partition=original
    )


def kafka_destination(letter: Letter, target: RequeueTarget | None) -> str:
    topic = (target.topic if target is not None else None) or letter.origin_topic
    if not topic:
        raise InvalidInput("unknown origin: choose a target topic")
    return topic


def _check_edit(letter: DeadLetter, edit: Edit | None, kind: str) -> dict[str, Any]:
    """Refuse an edit that cannot be sent; return the diff for the audit entry."""
    if edit is None:
        return {}
    diff: dict[str, Any] = {}
    if edit.body is not None:
        content_type = str(letter.properties.get("content_type") or "")
        if "json" in media_type(content_type) or (kind == "kafka" and _looks_json(letter)):
            try:
                json.loads(edit.body)
            except ValueError as exc:
                raise InvalidInput(f"the edited body is not valid JSON: {exc}") from None
        old = full_body(letter).decode("utf-8", "replace").splitlines()
        new = edit.body.decode("utf-8", "replace").splitlines()
        lines = list(difflib.unified_diff(old, new, "before", "after", lineterm=""))
        diff["body"] = "\n".join(lines[:MAX_DIFF_LINES])
    if edit.headers is not None:
        if kind == "kafka":
            if not isinstance(edit.headers, list) or not all(
                isinstance(h, list) and len(h) == 2 and isinstance(h[0], str) for h in edit.headers
            ):
                raise InvalidInput("Kafka headers: a JSON list of [key, value] pairs")
            validate.kafka_headers((k, v if isinstance(v, str) else None) for k, v in edit.headers)
            before = {k: v for k, v in letter.headers} if isinstance(letter.headers, list) else {}
            after = {k: v for k, v in edit.headers}
        else:
            if not isinstance(edit.headers, dict):
                raise InvalidInput("headers: a JSON object")
            validate.amqp_table(edit.headers)
            before = dict(letter.headers) if isinstance(letter.headers, dict) else {}
            after = dict(edit.headers)
        diff["headers"] = {
            "added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": sorted(k for k in set(after) & set(before) if after[k] != before[k]),
        }
    return diff


def _looks_json(letter: DeadLetter) -> bool:
    try:
        json.loads(bytes(letter.body))
    except ValueError:
        return False
    return not letter.body_truncated


def _claim(letter_id: int) -> tuple[DeadLetter, str]:
    letter = DeadLetter.objects.select_related("cluster", "full_body").filter(pk=letter_id).first()
    if letter is None:
        raise DeadLetter.DoesNotExist(f"no dead letter #{letter_id}")
    previous = letter.status
    claimed = DeadLetter.objects.filter(pk=letter_id, status__in=CLAIMABLE).update(
        status=REQUEUING, claimed_at=timezone.now()
    )
    if not claimed:
        letter.refresh_from_db(fields=["status"])
        shown = "being requeued" if letter.status == REQUEUING else f"already {letter.status}"
        raise AlreadyHandled(f"dead letter #{letter_id} is {shown}; nothing was sent")
    return letter, previous


def _finish(
    letter: DeadLetter,
    *,
    status: str,
    user: User,
    error: str = "",
    requeued: bool = False,
) -> None:
    real = user if getattr(user, "is_authenticated", False) and user.pk else None
    changes: dict[str, Any] = {"status": status, "last_error": error}
    if requeued:
        changes.update(acted_by=real, acted_at=timezone.now(), requeue_count=F("requeue_count") + 1)
    DeadLetter.objects.filter(pk=letter.pk, status=REQUEUING).update(**changes)


async def do_requeue_dead_letter(
    letter_id: int,
    *,
    user: User,
    request: HttpRequest | None = None,
    target: RequeueTarget | None = None,
    edit: Edit | None = None,
    action: str = "deadletter.requeue",
) -> RequeueResult:
    """Send one dead letter back and mark it requeued (see the module docstring)."""
    letter = await sync_to_async(
        DeadLetter.objects.select_related("cluster").filter(pk=letter_id).first
    )()
    if letter is None:
        raise DeadLetter.DoesNotExist(f"no dead letter #{letter_id}")
    slug, kind = letter.cluster.slug, letter.cluster.kind
    await require_role(
        user, OPERATOR, action=action, slug=slug, target=audit_target(letter_id), request=request
    )
    if kind == "kafka" and edit is not None and edit.body == b"" and value_is_null(letter):
        # A null value is shown as an empty body; leaving it so keeps it null.
        edit = None if edit.headers is None else Edit(headers=edit.headers)
    diff = _check_edit(letter, edit, kind)
    config = get_cluster_config(slug)
    if kind == "kafka":
        destination = {"topic": validate.kafka_topic(kafka_destination(letter, target))}
    else:
        exchange, routing_key = rabbitmq_destination(letter, target)
        validate.amqp_exchange(exchange)
        validate.amqp_short(routing_key, "routing_key")
        destination = {"vhost": letter.vhost, "exchange": exchange, "routing_key": routing_key}
    letter, previous = await sync_to_async(_claim)(letter_id)
    body = edit.body if edit is not None and edit.body is not None else full_body(letter)
    headers = edit.headers if edit is not None and edit.headers is not None else letter.headers
    parameters = {"dead_letter": letter_id, "dlq": letter.dlq, **destination}
    if diff:
        parameters["diff"] = diff
    try:
        if kind == "kafka":
            record_ = kafka_letter(
                letter,
                destination["topic"],
                body=edit.body if edit is not None else None,
                headers=headers,
            )
            await requeue_kafka(KafkaBroker(config).client_config(), record_, config.timeout)
        else:
            props = {
                k: v for k, v in letter.properties.items() if k not in ("exchange", "routing_key")
            }
            await requeue_rabbitmq(
                config,
                letter.vhost,
                AmqpLetter(exchange, routing_key, body, props, headers or {}),
            )
    except Unroutable as exc:
        await sync_to_async(_finish)(
            letter, status=DeadLetter.Status.REQUEUE_FAILED, user=user, error=exc.message
        )
        await _audit(
            action, user, letter, parameters, AuditEntry.Outcome.FAILED, exc.message, request
        )
        return RequeueResult(letter_id, DeadLetter.Status.REQUEUE_FAILED, False, exc.message)
    except BrokerError as exc:
        await sync_to_async(_finish)(letter, status=previous, user=user, error=exc.message)
        await _audit(
            action, user, letter, parameters, AuditEntry.Outcome.FAILED, exc.message, request
        )
        raise
    await sync_to_async(_finish)(
        letter, status=DeadLetter.Status.REQUEUED, user=user, requeued=True
    )
    await _audit(action, user, letter, parameters, AuditEntry.Outcome.OK, "", request)
    where = destination.get("topic") or f"{destination['exchange'] or '(default)'} / {routing_key}"
    return RequeueResult(letter_id, DeadLetter.Status.REQUEUED, True, f"requeued to {where}")


async def _audit(
    action: str,
    user: User,
    letter: DeadLetter,
    parameters: dict[str, Any],
    outcome: str,
    detail: str,
    request: HttpRequest | None,
) -> None:
    await sync_to_async(record)(
        action=action,
        user=user,
        outcome=outcome,
        cluster=letter.cluster,
        target=audit_target(letter.pk),
        parameters=parameters,
        detail=detail,
        request=request,
    )


@dataclass(frozen=True)
class ManyResult:
    sent: int
    failed: int
    skipped: int
    errors: tuple[str, ...]


async def do_requeue_many(
    ids: list[int], *, user: User, request: HttpRequest | None = None
) -> ManyResult:
    """Requeue each letter to its origin, one by one (the admin action; small selections).

    Letters not pending are skipped; unroutable ones are counted as failed.
    Broker errors stop nothing: each is counted and the next letter is tried.
    """
    sent = failed = skipped = 0
    errors: list[str] = []
    for letter_id in ids:
        try:
            result = await do_requeue_dead_letter(letter_id, user=user, request=request)
        except AlreadyHandled:
            skipped += 1
            continue
        except (InvalidInput, BrokerError, DeadLetter.DoesNotExist) as exc:
            failed += 1
            errors.append(f"#{letter_id}: {exc}")
            continue
        if result.sent:
            sent += 1
        else:
            failed += 1
            errors.append(f"#{letter_id}: {result.message}")
    return ManyResult(sent, failed, skipped, tuple(errors[:20]))
