"""Requeueing and discarding dead letters, one at a time or a selection.

``do_requeue_dead_letter`` sends one letter back to its origin (or where a
redirect sends it, or to a target the user picks), optionally with an edited
body and headers, and only then marks the row ``requeued``. The row is
claimed first by a conditional UPDATE from ``pending``/``requeue_failed``
to ``requeuing``: a second click, a second tab or a bulk job racing the
same row gets ``AlreadyHandled`` and sends nothing. An unroutable message
or unknown topic leaves the row in the inbox as ``requeue_failed`` with
``last_error``; any other broker error puts the row back as it was and
propagates (the page says the broker is unreachable).

Limitation: if the process dies between the broker's confirm and the final
UPDATE, the row stays ``requeuing`` (the message was sent at most once); the
inbox shows it under that status.

``do_requeue_many`` requeues a small selection in the request (the admin action).
Discarding is in ``discard.py``.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from asgiref.sync import sync_to_async
from django.db.models import F
from django.http import HttpRequest
from django.utils import timezone

from brokers.base import BrokerError, BrokerUnavailable
from brokers.base.deadletters import (
    DeadLetters,
    Edit,
    InvalidLetter,
    OutgoingLetter,
    RequeueTarget,
    Result,
    StoredLetter,
)
from brokers.registry import require
from dashboard.core.audit import record
from dashboard.core.clusters import get_cluster_config
from dashboard.core.params import InvalidInput
from dashboard.core.roles import OPERATOR
from dashboard.deadletters.common import User, require_role
from dashboard.deadletters.edit_body import EditError
from dashboard.deadletters.inbox import CLAIMABLE_STATUSES, audit_target
from dashboard.deadletters.redirects import RedirectTable
from dashboard.models import AuditEntry, DeadLetter

REQUEUING = "requeuing"
CLAIMABLE = CLAIMABLE_STATUSES
MAX_DIFF_LINES = 400


class AlreadyHandled(InvalidInput):
    """The letter is not pending any more (requeued, being requeued, discarded)."""


@dataclass(frozen=True)
class RequeueResult:
    letter_id: int
    status: str
    sent: bool
    message: str


class Letter(Protocol):
    """What sending needs of a dead letter: a ``DeadLetter`` or a lighter row of its fields."""

    @property
    def vhost(self) -> str: ...
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


def stored_letter(letter: Letter, *, whole: bool = True) -> StoredLetter:
    """The row's fields as the broker kinds read them (with every byte of the body, unless
    ``whole`` is False: then the stored part, enough to tell where the letter goes)."""
    details = letter.failure_details
    return StoredLetter(
        vhost=letter.vhost,
        origin_exchange=letter.origin_exchange,
        origin_routing_key=letter.origin_routing_key,
        origin_queue=letter.origin_queue,
        origin_topic=letter.origin_topic,
        origin_partition=letter.origin_partition,
        is_task=bool(isinstance(details, dict) and details.get("task")),
        key=bytes(letter.key) if letter.key is not None else None,
        headers=letter.headers,
        properties=letter.properties if isinstance(letter.properties, dict) else {},
        body=full_body(letter) if whole else bytes(letter.body),
        body_truncated=letter.body_truncated,
    )


def outgoing(
    deadletters: DeadLetters,
    letter: StoredLetter,
    target: RequeueTarget | None = None,
    edit: Edit | None = None,
) -> OutgoingLetter:
    """What to send; InvalidInput when the letter has no known origin and no target."""
    try:
        return deadletters.outgoing(letter, target, edit)
    except InvalidLetter as exc:
        raise InvalidInput(str(exc)) from None


def _check_edit(
    deadletters: DeadLetters, letter: StoredLetter, edit: Edit | None
) -> dict[str, Any]:
    """Refuse an edit that cannot be sent; return the diff for the audit entry."""
    if edit is None:
        return {}
    diff: dict[str, Any] = {}
    if edit.body is not None:
        if deadletters.body_is_json(letter):
            try:
                json.loads(edit.body)
            except ValueError as exc:
                raise EditError("body", f"the edited body is not valid JSON: {exc}") from None
        old = letter.body.decode("utf-8", "replace").splitlines()
        new = edit.body.decode("utf-8", "replace").splitlines()
        lines = list(difflib.unified_diff(old, new, "before", "after", lineterm=""))
        diff["body"] = "\n".join(lines[:MAX_DIFF_LINES])
    if edit.headers is not None:
        try:
            before, after = deadletters.edited_headers(letter, edit.headers)
        except InvalidLetter as exc:
            raise EditError("headers", str(exc)) from None
        # A header no client can send stays an InvalidValue: it names the exact field
        # ("headers[0].key"), which the API answers with; the page puts it under the headers.
        diff["headers"] = {
            "added": sorted(set(after) - set(before)),
            "removed": sorted(set(before) - set(after)),
            "changed": sorted(k for k in set(after) & set(before) if after[k] != before[k]),
        }
    return diff


def _claim(letter: DeadLetter) -> str:
    """Claim the row for this requeue; return the status it had (AlreadyHandled if taken)."""
    previous = letter.status
    claimed = DeadLetter.objects.filter(pk=letter.pk, status__in=CLAIMABLE).update(
        status=REQUEUING, claimed_at=timezone.now()
    )
    if not claimed:
        letter.refresh_from_db(fields=["status"])
        shown = "being requeued" if letter.status == REQUEUING else f"already {letter.status}"
        raise AlreadyHandled(f"dead letter #{letter.pk} is {shown}; nothing was sent")
    return previous


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
    audit: Mapping[str, Any] | None = None,
) -> RequeueResult:
    """Send one dead letter back and mark it requeued (see the module docstring)."""
    letter = await sync_to_async(
        DeadLetter.objects.select_related("cluster", "full_body").filter(pk=letter_id).first
    )()
    if letter is None:
        raise DeadLetter.DoesNotExist(f"no dead letter #{letter_id}")
    slug = letter.cluster.slug
    await require_role(
        user, OPERATOR, action=action, slug=slug, target=audit_target(letter_id), request=request
    )
    config = get_cluster_config(slug)
    deadletters = require(config, lambda k: k.deadletters, "dead-letter queues")
    stored = stored_letter(letter)
    if edit is not None:
        edit = deadletters.without_noop(stored, edit)
    diff = _check_edit(deadletters, stored, edit)
    redirects = await sync_to_async(RedirectTable.load)([slug])
    resolved = redirects.resolve(deadletters, slug, stored, target)
    message = outgoing(deadletters, stored, resolved.target, edit)
    previous = await sync_to_async(_claim)(letter)
    parameters = {"dead_letter": letter_id, "dlq": letter.dlq, **message.destination}
    if resolved.redirect is not None:
        parameters["redirect"] = resolved.redirect.pk
    parameters.update(audit or {})
    if diff:
        parameters["diff"] = diff
    sender = deadletters.sender(config, message.address)
    try:
        (result,) = await sender.send([message])
    finally:
        await sender.close()
    if result.result == Result.UNROUTABLE:
        await sync_to_async(_finish)(
            letter, status=DeadLetter.Status.REQUEUE_FAILED, user=user, error=result.message
        )
        await _audit(
            action, user, letter, parameters, AuditEntry.Outcome.FAILED, result.message, request
        )
        return RequeueResult(letter_id, DeadLetter.Status.REQUEUE_FAILED, False, result.message)
    if result.result == Result.UNKNOWN:
        # It may or may not have arrived: the row goes back as it was, to be tried again.
        await sync_to_async(_finish)(letter, status=previous, user=user, error=result.message)
        await _audit(
            action, user, letter, parameters, AuditEntry.Outcome.FAILED, result.message, request
        )
        raise BrokerUnavailable(result.message)
    await sync_to_async(_finish)(
        letter, status=DeadLetter.Status.REQUEUED, user=user, requeued=True
    )
    await _audit(action, user, letter, parameters, AuditEntry.Outcome.OK, "", request)
    return RequeueResult(
        letter_id, DeadLetter.Status.REQUEUED, True, f"requeued to {message.where}"
    )


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
