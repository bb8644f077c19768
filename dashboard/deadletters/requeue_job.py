"""Bulk requeue of dead letters as a job of the job framework (``jobs``).

``do_start_bulk_requeue`` (operator) freezes the selection at start: the ids
of the letters that are pending (or requeue_failed) *now*, given as a list of
ids, a group (fingerprint) or the inbox filter; letters captured later are
never swept in. The worker runs ``run_requeue_job``: the selection in batches
(``MQB_DLQ_REQUEUE_BATCH``, smaller under a rate limit) through
``requeue_batch`` (claim, send with one connection per cluster and vhost,
settle in one transaction), at most ``rate_limit`` letters per second,
checking pause and cancel between batches, and ends with a verdict and exact
counts read from the rows (requeued, failed: unroutable or unknown topic,
skipped: no longer pending).

A worker killed mid-job: the job is started again (``jobs.revive``) and goes on
from its last recorded progress; the batch in flight at the kill is claimed
again, its sent rows are skipped by their status and its unsettled rows are
sent again (at most one batch of duplicates, with the original message id).
Every letter's detail page shows the job that requeued it and the job's audit
entries (start, end); one audit entry per letter is not written for a bulk job.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db.models import Count
from django.http import HttpRequest

from brokers.base import BrokerError
from dashboard.core.params import InvalidInput
from dashboard.core.roles import OPERATOR
from dashboard.deadletters import requeue_batch
from dashboard.deadletters.common import User, require_role
from dashboard.deadletters.inbox import InboxFilter, filtered
from dashboard.deadletters.requeue import CLAIMABLE
from dashboard.jobs import control, runner
from dashboard.models import DeadLetter, Job

KIND = "deadletters.requeue"  # its runner, title and page template: control.RUNNERS
MAX_SELECTION = 1_000_000


class SelectionChanged(InvalidInput):
    """The letters that match now are not as many as the user confirmed: nothing started."""


def freeze_selection(
    ids: list[int] | None, spec: InboxFilter | None, upto: int | None
) -> list[int]:
    """The ids of the chosen letters that can be requeued now (at most ``MAX_SELECTION``)."""
    rows = DeadLetter.objects.filter(status__in=CLAIMABLE)
    if upto is not None:
        # Only letters that existed when the user was asked: later ones are not swept in.
        rows = rows.filter(pk__lte=upto)
    if ids is not None:
        # In chunks: SQLite allows at most 32,766 parameters per statement.
        chosen: list[int] = []
        for start in range(0, min(len(ids), MAX_SELECTION), 10_000):
            chunk = rows.filter(pk__in=ids[start : start + 10_000])
            chosen += chunk.values_list("pk", flat=True)
        return sorted(chosen)
    if spec is not None:
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
    return control.do_start_job(
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
    rate_limit: Any = None,
    expect: int | None = None,
    upto: int | None = None,
    request: HttpRequest | None = None,
) -> Job:
    """Freeze the selection and hand it to the worker; returns the Job (watch it at its url).

    ``rate_limit``: messages per second, in (0, ``jobs.MAX_RATE``]; empty or 0
    for the default (``MQB_DLQ_REQUEUE_RATE``, 0: no limit). ``upto``: the
    highest letter id the user was shown (later letters are left out);
    ``expect``: how many letters the user confirmed. When the frozen selection
    is not that many (letters were requeued, discarded or purged meanwhile),
    nothing starts: SelectionChanged says how many match now.
    """
    await require_role(user, OPERATOR, action=KIND, slug="", target="deadletters", request=request)
    rate = rate_limit_of(rate_limit)
    if rate is None:
        rate = control.parse_rate_limit(settings.MQB_DLQ_REQUEUE_RATE, zero_is_none=True)
    selection = await sync_to_async(freeze_selection)(ids, spec, upto)
    if not selection:
        raise InvalidInput("no pending dead letter matches: nothing to requeue")
    if expect is not None and len(selection) != expect:
        raise SelectionChanged(
            f"You confirmed {expect:,} dead letter{'s' if expect != 1 else ''}, but"
            f" {len(selection):,} of them can be requeued now (others were requeued, discarded"
            " or purged meanwhile). Nothing was started: check the counts and confirm again."
        )
    description: dict[str, Any] = {"letters": len(selection)}
    if ids is None and spec is not None:
        description["filter"] = spec.as_params()
    job: Job = await sync_to_async(_start)(selection, description, rate, user, request)
    return job


def rate_limit_of(value: Any) -> float | None:
    """A bulk requeue's rate limit from user input; InvalidInput names the field."""
    try:
        return control.parse_rate_limit(value, zero_is_none=True)
    except control.InvalidRate as exc:
        raise InvalidInput(str(exc)) from None


def batch_size(rate_limit: float | None) -> int:
    size = max(1, settings.MQB_DLQ_REQUEUE_BATCH)
    if rate_limit:
        # About one batch per progress interval keeps the rate smooth and pause quick.
        size = min(size, max(1, int(rate_limit * settings.MQB_JOB_PROGRESS_INTERVAL)))
    return size


async def run_requeue_job(run: runner.JobRun) -> runner.JobOutcome:
    job = run.job
    selection = [int(i) for i in job.selection]
    total = len(selection)
    # Authorised at start; a creator deleted since then leaves acted_by empty.
    user: User = job.created_by or AnonymousUser()
    size = batch_size(job.rate_limit)
    # Resumed: every batch before the recorded progress was settled before it was recorded.
    position = min(job.done, total) if run.resumed else 0
    senders = requeue_batch.Senders()
    started, start_position = time.monotonic(), position
    # The next batch is claimed and read while this one is sent (database and
    # broker work overlap); a claimed batch is part of the job's recorded
    # position only once settled, so a kill before that claims it again.
    ahead: asyncio.Future[list[requeue_batch.Row]] | None = None
    ahead_ids: list[int] = []

    def claim(at: int) -> tuple[asyncio.Future[list[requeue_batch.Row]] | None, list[int]]:
        ids = selection[at : at + size]
        if not ids:
            return None, []
        claimed = sync_to_async(requeue_batch.claim_batch)(job.pk, ids)
        return asyncio.ensure_future(claimed), ids

    def rate() -> float | None:
        # Letters per second since the start (or the last resume), once some were sent.
        elapsed = time.monotonic() - started
        sent = position - start_position
        return sent / elapsed if sent > 0 and elapsed > 0 else None

    try:
        while position < total:
            command = await run.checkpoint(
                done=position, total=total, failed=job.failed, rate=rate()
            )
            while command == runner.JobCommand.PAUSE:
                await asyncio.sleep(run.step)
                command = await run.checkpoint(done=position, total=total, failed=job.failed)
                started, start_position = time.monotonic(), position
            if command == runner.JobCommand.RUN and job.rate_limit:
                # Wait for this batch's slot (the rate holds over the whole run),
                # in short steps: a pause or cancel meanwhile is obeyed before sending.
                wait = started + (position - start_position) / job.rate_limit - time.monotonic()
                command = await run.wait(
                    wait, done=position, total=total, failed=job.failed, rate=rate()
                )
                if command == runner.JobCommand.PAUSE:
                    continue
            if command == runner.JobCommand.CANCEL:
                if ahead is not None:
                    await ahead
                    await sync_to_async(requeue_batch.unclaim)(job.pk, ahead_ids)
                return await _outcome(job.pk, Job.State.CANCELLED, "Cancelled", position, total)
            if ahead is None:
                ahead, ahead_ids = claim(position)
            assert ahead is not None
            letters, count = await ahead, len(ahead_ids)
            ahead, ahead_ids = claim(position + count)
            await requeue_batch.send_batch(
                job.pk, letters, senders, user, settings.MQB_DLQ_REQUEUE_RETRIES
            )
            position += count
    except BrokerError as exc:
        if ahead is not None:
            await asyncio.wait([ahead])
        released = await sync_to_async(requeue_batch.release)(
            job.pk, f"Bulk requeue job #{job.pk} stopped: {exc.message}."
        )
        head = f"Failed: {exc.message}"
        if released:
            head += f" ({released} letters claimed but not confirmed are pending again)"
        return await _outcome(job.pk, Job.State.FAILED, head, position, total)
    finally:
        await senders.close()
    return await _outcome(job.pk, Job.State.DONE, "Done", total, total)


async def _outcome(job_id: int, state: str, head: str, done: int, total: int) -> runner.JobOutcome:
    counts = await sync_to_async(requeue_batch.counts)(job_id, total)
    if state != Job.State.DONE:
        # Letters past the stopping point were neither claimed nor skipped.
        counts["skipped"] = max(0, done - counts["claimed"])
        counts["not_reached"] = total - done
    errors = await sync_to_async(_first_errors)(job_id)
    verdict = (
        f"{head}: {counts['requeued']} of {total} requeued, {counts['failed']} failed, "
        f"{counts['skipped']} skipped (no longer pending)."
    )
    if counts.get("not_reached"):
        verdict += f" {counts['not_reached']} not reached."
    if errors:
        verdict += f" First errors: {'; '.join(errors[:3])}"
    return runner.JobOutcome(
        state=state,
        verdict=verdict,
        done=done,
        total=total,
        failed=counts["failed"],
        result={**counts, "errors": errors},
    )


def live_counts(job: Job) -> dict[str, int]:
    """The job's letters now: how many it requeued, and how many of those came back since."""
    rows = DeadLetter.objects.filter(
        claim_job=job.pk,
        status__in=(DeadLetter.Status.REQUEUED, DeadLetter.Status.FAILED_AGAIN),
    )
    by_status = {r["status"]: r["n"] for r in rows.values("status").annotate(n=Count("id"))}
    came_back = by_status.get(DeadLetter.Status.FAILED_AGAIN, 0)
    requeued = by_status.get(DeadLetter.Status.REQUEUED, 0) + came_back
    return {"requeued": requeued, "came_back": came_back}


def _first_errors(job_id: int) -> list[str]:
    rows = (
        DeadLetter.objects.filter(claim_job=job_id, status=DeadLetter.Status.REQUEUE_FAILED)
        .order_by("pk")
        .values_list("pk", "last_error")[:20]
    )
    return [f"#{pk}: {error}" for pk, error in rows]
