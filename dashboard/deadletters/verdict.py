"""The verdict on a requeue: did the message come back as a dead letter?

Called by the capture store right after new rows are inserted, in the same
transaction. A row ``requeued`` within ``MQB_DLQ_VERDICT_WINDOW`` seconds is
marked ``failed_again`` and linked (``failed_again_as``) to the new row when
the new row is the same message, as the kind tells it apart
(:class:`~brokers.base.deadletters.SameMessage`): the same message id on
RabbitMQ (ids that are empty never match), the same key and fingerprint on
Kafka, or on Kafka the same key and a new row whose earlier failures
(``failure_details.history``: it failed again, for another reason) include
the requeued row's fingerprint.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone

from brokers.base.deadletters import SameMessage
from dashboard.models import DeadLetter


def mark_failed_again(
    cluster_id: int, same_message: SameMessage, rows: Sequence[dict[str, Any]]
) -> int:
    """Link requeued rows to the new ``rows`` (``{attname: value}``, already stored)."""
    if not rows:
        return 0
    since = timezone.now() - timedelta(seconds=settings.MQB_DLQ_VERDICT_WINDOW)
    requeued = DeadLetter.objects.filter(
        cluster_id=cluster_id, status=DeadLetter.Status.REQUEUED, acted_at__gte=since
    )
    keys = [r["capture_key"] for r in rows]
    if same_message == SameMessage.KEY_AND_FINGERPRINT:
        fingerprints = {r["fingerprint"] for r in rows}
        for row in rows:
            older = _history(row.get("failure_details"))
            fingerprints |= {str(h.get("fingerprint")) for h in older}
        # Without a key "the same message" cannot be told apart from its neighbours.
        candidates = list(
            requeued.filter(fingerprint__in=fingerprints, key__isnull=False).order_by("acted_at")
        )
        if not candidates:
            return 0
        new = DeadLetter.objects.filter(cluster_id=cluster_id, capture_key__in=keys).values_list(
            "id", "fingerprint", "key", "failure_details"
        )
        latest: dict[tuple[str, bytes | None], int] = {}
        earlier: dict[tuple[str, bytes | None], int] = {}
        for pk, fp, key, details in new:
            raw = bytes(key) if key is not None else None
            latest[(fp, raw)] = pk
            for failure in _history(details):
                earlier.setdefault((str(failure.get("fingerprint") or ""), raw), pk)
        latest = {**earlier, **latest}
        matches = {
            c.pk: latest.get((c.fingerprint, bytes(c.key) if c.key is not None else None))
            for c in candidates
        }
    else:
        ids = {r["message_id"] for r in rows if r.get("message_id")}
        if not ids:
            return 0
        candidates = list(requeued.filter(message_id__in=ids))
        if not candidates:
            return 0
        new_ids = DeadLetter.objects.filter(
            cluster_id=cluster_id, capture_key__in=keys, message_id__in=ids
        ).values_list("id", "message_id")
        by_id = dict((message_id, pk) for pk, message_id in sorted(new_ids))
        matches = {c.pk: by_id.get(c.message_id) for c in candidates}
    marked = 0
    for old, new_pk in matches.items():
        if new_pk is not None and new_pk != old:
            marked += DeadLetter.objects.filter(pk=old, status=DeadLetter.Status.REQUEUED).update(
                status=DeadLetter.Status.FAILED_AGAIN, failed_again_as_id=new_pk
            )
    return marked


def _history(details: Any) -> list[dict[str, Any]]:
    found = details.get("history") if isinstance(details, dict) else None
    return [h for h in found if isinstance(h, dict)] if isinstance(found, list) else []
