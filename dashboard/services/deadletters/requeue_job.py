"""Bulk requeue of dead letters as a job of helper-5's job framework (``services.jobs``).

``do_start_bulk_requeue`` (operator) freezes the selection at start: the ids
of the letters that are pending (or requeue_failed) *now*, given as a list of
ids, a group (fingerprint) or the inbox filter; letters captured later are
never swept in. The worker runs ``run_requeue_job``: one letter at a time
through ``do_requeue_dead_letter`` (so each gets the double-send guard, its
status, its audit entry), at most ``rate_limit`` letters per second, checking
pause and cancel at every job checkpoint, and ends with a verdict and exact
counts (requeued, failed: unroutable or broker error, skipped: no longer
pending). A worker killed mid-job gets the task again (acks_late) and the job
goes on: letters already requeued are skipped by their status, so none is sent
twice, except one whose confirm arrived just before the kill and whose row was
not yet updated (it stays ``requeuing`` and is skipped).

Limitation: each letter opens its own broker connection (~ms per letter), so
this is for thousands, not the 100,000-message benchmark of issue 5.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from brokers.base import BrokerError
from dashboard.models import DeadLetter, Job
from dashboard.roles import OPERATOR
from dashboard.services import jobs
from dashboard.services.deadletters.common import InvalidInput, User, require_role
from dashboard.services.deadletters.inbox import InboxFilter, filtered
from dashboard.services.deadletters.requeue import (
    CLAIMABLE,
    AlreadyHandled,
    do_requeue_dead_letter,
)

KIND = "deadletters.requeue"
# helper-5's framework maps a job kind to its runner; registering here keeps its file untouched.
jobs.RUNNERS.setdefault(KIND, "dashboard.services.deadletters.requeue_job.run_requeue_job")
MAX_SELECTION = 1_000_000


def _freeze(ids: list[int] | None, spec: InboxFilter | None) -> list[int]:
    rows = DeadLetter.objects.filter(status__in=CLAIMABLE)
    if ids is not None:
        rows = rows.filter(pk__in=ids)
    elif spec is not None:
        rows = rows & filtered(spec)
    else:
        raise InvalidInput("choose letters, a group or a filter to requeue")
    return list(rows.order_by("pk").values_list("pk", flat=True)[:MAX_SELECTION])


def _start(
    selection: list[int],
    description: dict[str, Any],
    rate: float | None,
    user: User,
    request: HttpRequest | None,
) -> Job:
    return jobs.do_start_job(
        kind=KIND,
        cluster=None,
        parameters=description,
        user=user,
        target="deadletters",
        selection=selection,
        rate_limit=rate,
        total=len(selection),
        request=request,
    )


async def do_start_bulk_requeue(
    *,
    user: User,
    ids: list[int] | None = None,
    spec: InboxFilter | None = None,
    rate_limit: float | None = None,
    request: HttpRequest | None = None,
) -> Job:
    """Freeze the selection and hand it to the worker; returns the Job (watch it at its url)."""
    await require_role(user, OPERATOR, action=KIND, slug="", target="deadletters", request=request)
    if rate_limit is not None and rate_limit < 0:
        raise InvalidInput("rate limit: a positive number of messages per second")
    rate = rate_limit or settings.MQB_DLQ_REQUEUE_RATE or None
    selection = await sync_to_async(_freeze)(ids, spec)
    if not selection:
        raise InvalidInput("no pending dead letter matches: nothing to requeue")
    description: dict[str, Any] = {"letters": len(selection)}
    if ids is None and spec is not None:
        description["filter"] = spec.as_params()
    job: Job = await sync_to_async(_start)(selection, description, rate, user, request)
    return job


async def run_requeue_job(run: jobs.JobRun) -> jobs.JobOutcome:
    job = run.job
    selection = [int(i) for i in job.selection]
    total = len(selection)
    # Authorised at start; a creator deleted since then makes each requeue refused.
    user: User = job.created_by or AnonymousUser()
    counts = {"requeued": 0, "failed": 0, "skipped": 0}
    errors: list[str] = []
    started = time.monotonic()
    for index, letter_id in enumerate(selection):
        done = index
        command = await run.checkpoint(done=done, total=total, failed=counts["failed"])
        while command == jobs.JobCommand.PAUSE:
            await asyncio.sleep(run.interval)
            command = await run.checkpoint(done=done, total=total, failed=counts["failed"])
        if command == jobs.JobCommand.CANCEL:
            return _outcome(Job.State.CANCELLED, "Cancelled", done, total, counts, errors)
        if job.rate_limit:
            # Sleep until this letter's slot: the rate holds over the whole run.
            wait = started + index / job.rate_limit - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        try:
            result = await do_requeue_dead_letter(
                letter_id,
                user=user,
                action="deadletter.requeue_bulk",
            )
        except (AlreadyHandled, DeadLetter.DoesNotExist):
            counts["skipped"] += 1
            continue
        except (InvalidInput, BrokerError) as exc:
            counts["failed"] += 1
            errors.append(f"#{letter_id}: {exc}")
            continue
        if result.sent:
            counts["requeued"] += 1
        else:
            counts["failed"] += 1
            errors.append(f"#{letter_id}: {result.message}")
    return _outcome(Job.State.DONE, "Done", total, total, counts, errors)


def _outcome(
    state: str, head: str, done: int, total: int, counts: dict[str, int], errors: list[str]
) -> jobs.JobOutcome:
    verdict = (
        f"{head}: {counts['requeued']} of {total} requeued, {counts['failed']} failed, "
        f"{counts['skipped']} skipped (no longer pending)."
    )
    if errors:
        verdict += f" First errors: {'; '.join(errors[:3])}"
    return jobs.JobOutcome(
        state=state,
        verdict=verdict,
        done=done,
        total=total,
        failed=counts["failed"],
        result={**counts, "errors": errors[:20]},
    )
