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

On PostgreSQL the job is shared (``run_shared``): its runner (the lead) starts
up to ``MQB_DLQ_REQUEUE_PARALLEL`` - 1 helpers (``help_requeue_job``, Celery
tasks on the jobs queue, one per batch of work at most; none under a rate
limit, which one runner in one lane keeps) and every runner works the same loop
(``_work``), in ``LANES`` lanes each (a connection and senders of its own, so
one batch is in the database while another is at the broker): claim the next
to-do rows of the frozen selection with ``FOR UPDATE SKIP LOCKED``
(``requeue_batch.SharedClaims``), send them, settle them and commit, all in
one transaction, so no row is held by two runners. To do:
pending or requeue_failed and not settled by this job. A runner looks ahead
past the rows others hold, and at the end of the selection sweeps it once more
for rows given back. A runner killed mid-batch (``kill -9``) loses its
connection: its batches roll back to pending and unlocked, and the next claim
of any runner takes them (at most one batch per lane sent twice, with the
original message ids). Helpers stop when nothing is left to claim, on pause they wait,
on cancel (or when the job is started again under a new task id, or ends) they
stop after their batch. The lead alone records progress (read from the rows),
claims until nothing of the selection is to do (rows a dead helper left
included), waits until no helper holds the job's advisory lock, and gives the
verdict from the rows, with how many letters each worker settled
(``result["runners"]``). A lead killed is revived as above and starts helpers
of its own; the earlier ones stop at their next look. SQLite runs the job in
one runner, through the selection by position, as described first.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
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

log = logging.getLogger(__name__)

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


def runners_for(rate_limit: float | None, total: int, size: int) -> int:
    """How many runners work a job at once: one on SQLite and under a rate limit."""
    if rate_limit or not requeue_batch.set_based():
        return 1
    return max(1, min(settings.MQB_DLQ_REQUEUE_PARALLEL, math.ceil(total / size)))


async def run_requeue_job(run: runner.JobRun) -> runner.JobOutcome:
    if requeue_batch.set_based():
        return await run_shared(run)
    return await run_ordered(run)


async def run_ordered(run: runner.JobRun) -> runner.JobOutcome:
    """One runner through the selection by position (SQLite)."""
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


Step = Callable[[], Awaitable[runner.JobCommand]]


async def _work(
    run: runner.JobRun,
    claims: requeue_batch.SharedClaims,
    senders: requeue_batch.Senders,
    step: Step,
    *,
    lead: bool,
) -> runner.JobCommand:
    """Claim, send and settle batches until none is left to claim (RUN) or CANCEL.

    The lead goes on until nothing of the selection is to do: it waits for the
    rows other runners hold, and claims those a dead runner gave back.
    """
    job = run.job
    selection = sorted(int(i) for i in job.selection)
    user: User = job.created_by or AnonymousUser()
    size = batch_size(job.rate_limit)
    # Past the batches the other lanes and runners may hold.
    ahead = size * (runners_for(job.rate_limit, len(selection), size) * LANES + 1)
    position, sweeping = 0, False
    started, sent = time.monotonic(), 0
    while True:
        command = await step()
        while command == runner.JobCommand.PAUSE:
            await asyncio.sleep(run.step)
            command = await step()
            started, sent = time.monotonic(), 0
        if command == runner.JobCommand.CANCEL:
            return command
        if job.rate_limit:
            # This batch's slot (one runner under a rate limit), in short steps.
            wait = started + sent / job.rate_limit - time.monotonic()
            if wait > 0:
                await asyncio.sleep(min(wait, run.step))
                continue
        window = selection if sweeping else selection[position : position + ahead]
        letters = await claims.claim(window, size)
        if not letters:
            if not sweeping:
                position += ahead
                sweeping = position >= len(selection)
                continue
            if not lead or not await claims.todo(selection):
                return runner.JobCommand.RUN
            # Rows other runners hold: wait until one's batch ends (settled or given back).
            await claims.wait_held(selection, run.step)
            continue
        if not sweeping:
            # Rows before the last claimed one are done or held by other runners.
            position = bisect.bisect_right(selection, letters[-1].pk)
            sweeping = position >= len(selection)
        await requeue_batch.send_shared(
            claims, letters, senders, user, settings.MQB_DLQ_REQUEUE_RETRIES, give_back=lead
        )
        sent += len(letters)


LANES = 2
"""Batches a runner has in flight at once, each on a connection of its own: while one is
at the broker, the next is claimed and settled in the database."""


async def _lane(run: runner.JobRun, step: Step, *, lead: bool) -> runner.JobCommand:
    """One of a runner's lanes: its own connection and senders, the shared loop."""
    claims = requeue_batch.SharedClaims(run.job.pk, run.worker or "worker")
    senders = requeue_batch.Senders()
    try:
        if not await claims.open():
            return runner.JobCommand.CANCEL  # the lead is giving the verdict
        return await _work(run, claims, senders, step, lead=lead)
    finally:
        await senders.close()
        await claims.close()


async def _lanes(run: runner.JobRun, step: Step, *, lead: bool) -> runner.JobCommand:
    """The runner's lanes, the first one the lead's when ``lead``; BrokerError if one had it."""
    ends = await asyncio.gather(
        _lane(run, step, lead=lead),
        *(_lane(run, run.look, lead=False) for _ in range(LANES - 1)),
        return_exceptions=True,
    )
    for end in ends:
        if isinstance(end, BaseException):
            raise end
    commands = [end for end in ends if isinstance(end, runner.JobCommand)]
    return runner.JobCommand.CANCEL if runner.JobCommand.CANCEL in commands else commands[0]


async def run_shared(run: runner.JobRun) -> runner.JobOutcome:
    """The lead runner of a shared job (PostgreSQL): starts helpers, works, gives the verdict."""
    job = run.job
    total = len(job.selection)
    control_claims = requeue_batch.SharedClaims(job.pk, run.worker or "worker")
    await control_claims.open()
    counted = {"at": 0.0, "done": 0, "failed": 0, "base": -1}
    started = time.monotonic()

    async def step() -> runner.JobCommand:
        # Progress from the rows: every runner's settled letters.
        if time.monotonic() - counted["at"] >= run.interval * 0.8:
            counted["done"], counted["failed"] = await control_claims.settled()
            counted["at"] = time.monotonic()
            if counted["base"] < 0:
                counted["base"] = counted["done"]
        elapsed, sent = time.monotonic() - started, counted["done"] - counted["base"]
        return await run.checkpoint(
            done=int(counted["done"]),
            total=total,
            failed=int(counted["failed"]),
            rate=sent / elapsed if sent > 0 and elapsed > 0 else None,
        )

    state, head = Job.State.DONE, "Done"
    try:
        helpers = runners_for(job.rate_limit, total, batch_size(job.rate_limit)) - 1
        if helpers:
            try:
                await sync_to_async(control.enqueue_helpers)(job, helpers)
            except Exception:
                # The job queue is unavailable: this runner does the whole job alone.
                log.warning("job #%s: could not start its helpers", job.pk, exc_info=True)
        if job.rate_limit:
            command = await _lane(run, step, lead=True)
        else:
            command = await _lanes(run, step, lead=True)
        if command == runner.JobCommand.CANCEL:
            state, head = Job.State.CANCELLED, "Cancelled"
    except BrokerError as exc:
        state, head = Job.State.FAILED, f"Failed: {exc.message}"
        # Helpers stop at their next look, before the verdict is read.
        await sync_to_async(Job.objects.filter(pk=job.pk, state__in=control.LIVE).update)(
            state=Job.State.FAILED
        )
    try:
        await control_claims.wait_alone()
        left = await control_claims.todo(sorted(int(i) for i in job.selection))
        released = (await sync_to_async(requeue_batch.counts)(job.pk, total))["released"]
    finally:
        await control_claims.close()
    if state == Job.State.FAILED and released:
        head += f" ({released} letters claimed but not confirmed are pending again)"
    outcome = await _outcome(job.pk, state, head, total - left, total)
    tally = await sync_to_async(
        lambda: Job.objects.filter(pk=job.pk).values_list("result", flat=True).get()
    )()
    runners = (tally or {}).get("runners", {})
    return replace(outcome, result={**outcome.result, "runners": runners})


async def help_requeue_job(run: runner.JobRun) -> None:
    """A helper of a shared job: the same loop as the lead's until nothing is left to claim."""
    try:
        await _lanes(run, run.look, lead=False)
    except BrokerError as exc:
        # The batch was rolled back: the lead (or another helper) sends it.
        log.warning("helper of job #%s stopped: %s", run.job.pk, exc.message)


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
