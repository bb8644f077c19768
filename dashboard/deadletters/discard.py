"""Discarding dead letters: the rows stay, marked ``discarded``.

``do_discard_dead_letters`` (operator) changes pending or requeue-failed
letters, one audit entry each; ``do_discard_matching`` (admin) changes every
one the inbox filter matches, with one audit entry holding the filter.
Discarded rows are deleted ``MQB_DLQ_RETENTION_DAYS`` after the discard by
the collector's retention loop (``retention.do_delete_expired_dead_letters``).

Purging (``do_purge_dead_letters``, admin) deletes letters at once, whatever
their status except ``requeuing``: a selection or everything a filter
matches, with one audit entry holding the filter or the ids and the count.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.utils import timezone

from dashboard.core.audit import record
from dashboard.core.params import InvalidInput
from dashboard.core.roles import ADMIN, OPERATOR
from dashboard.deadletters.common import User, require_role
from dashboard.deadletters.inbox import InboxFilter, audit_target, filtered
from dashboard.deadletters.requeue import CLAIMABLE
from dashboard.models import DeadLetter


def _discard(ids: list[int], user: User, request: HttpRequest | None, action: str) -> int:
    real = user if getattr(user, "is_authenticated", False) and user.pk else None
    done = 0
    for letter in DeadLetter.objects.select_related("cluster").filter(pk__in=ids):
        changed = DeadLetter.objects.filter(pk=letter.pk, status__in=CLAIMABLE).update(
            status=DeadLetter.Status.DISCARDED, acted_by=real, acted_at=timezone.now()
        )
        if changed:
            done += 1
            record(
                action=action,
                user=user,
                cluster=letter.cluster,
                target=audit_target(letter.pk),
                parameters={"dead_letter": letter.pk, "dlq": letter.dlq},
                request=request,
            )
    return done


async def do_discard_dead_letters(
    ids: list[int], *, user: User, request: HttpRequest | None = None
) -> int:
    """Mark pending (or requeue-failed) letters discarded; returns how many changed."""
    await require_role(
        user, OPERATOR, action="deadletter.discard", slug="", target="deadletters", request=request
    )
    return int(await sync_to_async(_discard)(ids, user, request, "deadletter.discard"))


def _discard_matching(spec: InboxFilter, user: User, request: HttpRequest | None) -> int:
    real = user if getattr(user, "is_authenticated", False) and user.pk else None
    changed = (
        filtered(spec)
        .filter(status__in=CLAIMABLE)
        .update(status=DeadLetter.Status.DISCARDED, acted_by=real, acted_at=timezone.now())
    )
    record(
        action="deadletter.discard_all",
        user=user,
        target="deadletters",
        parameters={"filter": spec.as_params(), "discarded": changed},
        request=request,
    )
    return int(changed)


async def do_discard_matching(
    spec: InboxFilter, *, user: User, request: HttpRequest | None = None
) -> int:
    """Admin: discard every pending letter the filter matches (one audit entry)."""
    await require_role(
        user, ADMIN, action="deadletter.discard_all", slug="", target="deadletters", request=request
    )
    return int(await sync_to_async(_discard_matching)(spec, user, request))


def _purge(
    ids: list[int] | None, spec: InboxFilter | None, user: User, request: HttpRequest | None
) -> int:
    # Never a row being requeued: its job or click settles it.
    rows = DeadLetter.objects.exclude(status=DeadLetter.Status.REQUEUING)
    deleted = 0
    if ids is not None:
        for start in range(0, len(ids), 10_000):  # SQLite: at most 32,766 parameters
            deleted += (
                rows.filter(pk__in=ids[start : start + 10_000])
                .delete()[1]
                .get(DeadLetter._meta.label, 0)
            )
        described: dict[str, object] = {"ids": ids[:1000], "selected": len(ids)}
    elif spec is not None:
        deleted = (
            rows.filter(pk__in=filtered(spec).values("pk"))
            .delete()[1]
            .get(DeadLetter._meta.label, 0)
        )
        described = {"filter": spec.as_params()}
    else:
        raise InvalidInput("choose letters or a filter to purge")
    record(
        action="deadletter.purge",
        user=user,
        target="deadletters",
        parameters={**described, "purged": deleted},
        request=request,
    )
    return int(deleted)


async def do_purge_dead_letters(
    *,
    user: User,
    ids: list[int] | None = None,
    spec: InboxFilter | None = None,
    request: HttpRequest | None = None,
) -> int:
    """Admin: delete letters now (any status but being requeued), no retention; one audit entry."""
    await require_role(
        user, ADMIN, action="deadletter.purge", slug="", target="deadletters", request=request
    )
    return int(await sync_to_async(_purge)(ids, spec, user, request))
