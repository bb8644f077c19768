"""Retention of discarded dead letters: kept ``MQB_DLQ_RETENTION_DAYS``, then deleted.

A discarded letter stays in the inbox (status ``discarded``) so that a wrong
discard can be seen and its body still read; after the retention period
``do_delete_expired_dead_letters`` deletes it, with its full body. The
collector's ``retention`` loop runs it every ``MQB_DLQ_RETENTION_INTERVAL``
seconds. Deletes go in batches of ``MQB_DLQ_RETENTION_BATCH`` rows, each its own
short transaction, so a large backlog never holds a long write lock (SQLite has
one writer: capture must keep going meanwhile). One audit entry per run that
deleted anything, with the count; the discards themselves were audited when
they happened, and those entries stay.

Only ``discarded`` rows expire. The retention clock starts at the discard
(``acted_at``); a discarded row without one (written by hand) counts from its
capture.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from dashboard.core.audit import record
from dashboard.models import DeadLetter

log = logging.getLogger("dashboard.deadletters.retention")
ACTION = "deadletter.retention"


def expired_dead_letters(now: datetime | None = None) -> QuerySet[DeadLetter]:
    """Discarded letters whose retention period is over."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.MQB_DLQ_RETENTION_DAYS)
    return DeadLetter.objects.filter(status=DeadLetter.Status.DISCARDED).filter(
        Q(acted_at__lt=cutoff) | Q(acted_at__isnull=True, captured_at__lt=cutoff)
    )


def do_delete_expired_dead_letters(now: datetime | None = None, batch: int | None = None) -> int:
    """Delete discarded letters past retention, in batches; returns how many were deleted."""
    size = max(1, batch or settings.MQB_DLQ_RETENTION_BATCH)
    moment = now or timezone.now()
    deleted = 0
    while True:
        with transaction.atomic():
            ids = list(
                expired_dead_letters(moment).order_by("pk").values_list("pk", flat=True)[:size]
            )
            if not ids:
                break
            # Re-checked inside the delete: a row requeued meanwhile is not discarded any more.
            _, per_model = expired_dead_letters(moment).filter(pk__in=ids).delete()
        # delete() also counts the full bodies that went with them; count letters only.
        deleted += per_model.get(DeadLetter._meta.label, 0)
        if len(ids) < size:
            break
    if deleted:
        record(
            action=ACTION,
            user=None,
            target="deadletters",
            parameters={
                "deleted": deleted,
                "retention_days": settings.MQB_DLQ_RETENTION_DAYS,
                "discarded_before": (
                    moment - timedelta(days=settings.MQB_DLQ_RETENTION_DAYS)
                ).isoformat(),
            },
            detail=f"deleted {deleted} discarded dead letter{'s' if deleted != 1 else ''}",
        )
        log.info("retention deleted %d discarded dead letters", deleted)
    return deleted
