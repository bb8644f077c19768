"""Letters left "being requeued" by a requeue that died before recording its outcome.

A requeue claims its row (``requeuing``) before sending and records the
outcome after the broker's confirm. If its process dies in between, the row
stays claimed: the message may or may not be at its origin. A bulk job's own
claims are taken over when the job is revived; a single click's are not. An
operator can put such a row back to pending (``do_release_stuck_requeue``),
once the claim is older than ``MQB_DLQ_STUCK_AFTER`` seconds and no running
job holds it; the audit entry and the row's last error say that the message
may already have arrived (check the origin by message id before requeueing).

Letters the scheduled-requeue dispatcher claimed (``claim_job`` =
``dispatch.CLAIM``) are the dispatcher's to finish: a dispatcher taking the
lease sends them again first. While a dispatcher holds the lease they are not
stuck (it is sending them, or will); only when none runs (no lease in Redis)
may an operator put them back to pending instead. ``resent_by_dispatcher``
tells the letter page to say so.
"""

from __future__ import annotations

from datetime import timedelta

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest
from django.utils import timezone

from dashboard.core.audit import record
from dashboard.core.params import InvalidInput
from dashboard.core.roles import OPERATOR
from dashboard.deadletters import dispatch
from dashboard.deadletters.common import User, require_role
from dashboard.deadletters.inbox import audit_target
from dashboard.jobs.control import LIVE
from dashboard.models import DeadLetter, Job

NOTE = (
    "released after a requeue stopped before recording its outcome: the message may"
    " already be at its origin (check it by message id before requeueing)"
)


def is_stuck(letter: DeadLetter) -> bool:
    """Claimed long enough ago, and not by a job that is still running."""
    if letter.status != DeadLetter.Status.REQUEUING:
        return False
    since = timezone.now() - timedelta(seconds=settings.MQB_DLQ_STUCK_AFTER)
    if letter.claimed_at is not None and letter.claimed_at > since:
        return False
    if letter.claim_job is None:
        return True
    if letter.claim_job == dispatch.CLAIM:
        # Unknown (Redis unreachable) counts as held: a second send is worse than a wait.
        return dispatch.lease_held() is False
    return not Job.objects.filter(pk=letter.claim_job, state__in=LIVE).exists()


def resent_by_dispatcher(letter: DeadLetter) -> bool:
    """A letter the dispatcher claimed and has not settled: it sends it (again) itself."""
    return letter.status == DeadLetter.Status.REQUEUING and letter.claim_job == dispatch.CLAIM


def _release(letter_id: int, user: User, request: HttpRequest | None) -> None:
    letter = DeadLetter.objects.select_related("cluster").filter(pk=letter_id).first()
    if letter is None:
        raise DeadLetter.DoesNotExist(f"no dead letter #{letter_id}")
    if not is_stuck(letter):
        raise InvalidInput(
            f"dead letter #{letter_id} is not a stuck requeue (status {letter.status}; a claim"
            f" is released only {settings.MQB_DLQ_STUCK_AFTER:g} s after it was made, and"
            " never while its job runs)"
        )
    changed = DeadLetter.objects.filter(
        Q(claimed_at=letter.claimed_at), pk=letter_id, status=DeadLetter.Status.REQUEUING
    ).update(status=DeadLetter.Status.PENDING, last_error=NOTE)
    if not changed:
        raise InvalidInput(f"dead letter #{letter_id} changed meanwhile; nothing was done")
    record(
        action="deadletter.release_stuck",
        user=user,
        cluster=letter.cluster,
        target=audit_target(letter_id),
        parameters={"dead_letter": letter_id, "claim_job": letter.claim_job},
        detail=NOTE,
        request=request,
    )


async def do_release_stuck_requeue(
    letter_id: int, *, user: User, request: HttpRequest | None = None
) -> None:
    """Operator: a letter stuck "being requeued" goes back to pending (audited)."""
    await require_role(
        user,
        OPERATOR,
        action="deadletter.release_stuck",
        slug="",
        target=audit_target(letter_id),
        request=request,
    )
    await sync_to_async(_release)(letter_id, user, request)
