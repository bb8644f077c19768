"""Running a job in the worker: the runner's checkpoint, the final verdict, the audit."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone
from django.utils.module_loading import import_string

from brokers.base import BrokerError
from dashboard.core.audit import record
from dashboard.jobs.control import FINAL, RUNNERS, get_job, group_name, push_job
from dashboard.jobs.events import JobProgress
from dashboard.models import AuditEntry, Job

log = logging.getLogger(__name__)


class JobCommand(StrEnum):
    RUN = "run"
    PAUSE = "pause"
    CANCEL = "cancel"


COMMANDS = {Job.State.PAUSED: JobCommand.PAUSE, Job.State.CANCELLED: JobCommand.CANCEL}

STEP = 0.5
"""Longest a runner waits without reading pause and cancel (a rate limit's wait, a pause)."""


@dataclass(frozen=True)
class JobOutcome:
    """How a runner ended: the final state (done, failed, cancelled) and the exact counts."""

    state: str
    verdict: str
    done: int
    total: int | None = None
    failed: int = 0
    result: dict[str, Any] = field(default_factory=dict)


class JobRun:
    """What a runner gets: the job as it was at start, and a checkpoint to call often.

    ``resumed`` is true when the job had already started: the worker died and
    the broker delivered its task again. A runner either continues from the
    row's counts or ends with a verdict that says what is known.
    """

    def __init__(self, job: Job, resumed: bool) -> None:
        self.job = job
        self.resumed = resumed
        self.interval = settings.MQB_JOB_PROGRESS_INTERVAL
        self.command = COMMANDS.get(Job.State(job.state), JobCommand.RUN)
        self.step = min(STEP, self.interval)
        self._last = self._read = 0.0
        # The Celery worker running this runner (or helper).
        self.worker = job.worker

    async def checkpoint(
        self, *, done: int, total: int | None, rate: float | None = None, failed: int = 0
    ) -> JobCommand:
        """Record progress (at most every interval), push it, return run, pause or cancel.

        The answer is never older than about one ``step``, whatever the interval.
        """
        now = time.monotonic()
        if now - self._last >= self.interval * 0.8:
            self._last = self._read = now
            job = await sync_to_async(self._save)(done, total, rate, failed)
            self.command = COMMANDS.get(Job.State(job.state), JobCommand.RUN)
            await push(job)
        elif now - self._read >= self.step * 0.8:
            self._read = now
            state = await sync_to_async(_state)(self.job.pk)
            self.command = COMMANDS.get(Job.State(state), JobCommand.RUN)
        return self.command

    async def wait(
        self,
        seconds: float,
        *,
        done: int,
        total: int | None,
        failed: int = 0,
        rate: float | None = None,
    ) -> JobCommand:
        """Sleep up to ``seconds`` in short steps; return early when paused or cancelled.

        A rate limit can mean minutes between two sends: the job still reports
        progress (it is not taken for dead and revived) and obeys within a step.
        """
        end = time.monotonic() + seconds
        command = self.command
        while command == JobCommand.RUN and (left := end - time.monotonic()) > 0:
            await asyncio.sleep(min(left, self.step))
            command = await self.checkpoint(done=done, total=total, failed=failed, rate=rate)
        return command

    async def look(self) -> JobCommand:
        """Run, pause or cancel, read at most every ``step``; records nothing (helpers).

        A job started again under another task id (its runner died) is cancel
        for a helper of the earlier run: the new run starts helpers of its own.
        """
        now = time.monotonic()
        if now - self._read >= self.step * 0.8:
            self._read = now
            state, task_id = await sync_to_async(_state_and_task)(self.job.pk)
            self.command = COMMANDS.get(Job.State(state), JobCommand.RUN)
            if task_id != self.job.task_id or state in FINAL:
                self.command = JobCommand.CANCEL
        return self.command

    def _save(self, done: int, total: int | None, rate: float | None, failed: int) -> Job:
        Job.objects.filter(pk=self.job.pk).update(
            done=done, total=total, rate=rate, failed=failed, progress_at=timezone.now()
        )
        return get_job(self.job.pk)


Runner = Callable[[JobRun], Awaitable[JobOutcome]]


async def push(job: Job) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        # Reading the job's counts touches the database: off the event loop.
        event = await sync_to_async(JobProgress.of_job)(job)
        await layer.group_send(group_name(job.pk), event.as_json())
    except Exception:
        log.warning("could not push job #%s to its watchers", job.pk, exc_info=True)


def run_job(job_id: int, task_id: str | None = None, worker: str = "") -> str:
    """Run job ``job_id`` to its end in this (worker) process; returns its final state."""
    _drop_stale_connections()
    try:
        job = Job.objects.select_related("cluster", "created_by").filter(pk=job_id).first()
        if job is None or (task_id and job.task_id and job.task_id != task_id):
            # A task from another database (tests) or a job started again.
            log.warning("job #%s: not this task's job (task %s); ignored", job_id, task_id)
            return "ignored"
        if job.state in FINAL:
            return str(job.state)
        resumed = job.started_at is not None
        now = timezone.now()
        Job.objects.filter(pk=job.pk, started_at__isnull=True).update(started_at=now)
        Job.objects.filter(pk=job.pk, state=Job.State.QUEUED).update(state=Job.State.RUNNING)
        # Whose it is now: a worker of this name starting again revives it (jobs.revive).
        Job.objects.filter(pk=job.pk).update(worker=worker)
        job = get_job(job.pk)
        outcome = asyncio.run(_run(job, resumed))
        return _finish(job.pk, outcome)
    finally:
        _drop_stale_connections()


def run_helper(job_id: int, task_id: str, worker: str = "") -> str:
    """Work job ``job_id`` beside its runner (its kind's helper) while its run ``task_id`` lasts."""
    _drop_stale_connections()
    try:
        job = Job.objects.select_related("cluster", "created_by").filter(pk=job_id).first()
        if job is None or job.task_id != task_id or job.state in FINAL:
            # A helper of another database (tests), of an earlier run, or of a finished job.
            return "ignored"
        helper = RUNNERS[job.kind].helper
        if not helper:
            return "ignored"
        run = JobRun(job, resumed=True)
        run.worker = worker
        try:
            asyncio.run(import_string(helper)(run))
        except Exception:
            # The job's runner and its other helpers take over the work left.
            log.exception("helper of job #%s (%s) failed", job.pk, job.kind)
            return "failed"
        return "done"
    finally:
        _drop_stale_connections()


def _drop_stale_connections() -> None:
    """A long-lived worker's connections may have gone stale between tasks; drop those.

    Not inside a transaction (a caller's, or a test's): closing would break it.
    """
    if not connection.in_atomic_block:
        close_old_connections()


async def _run(job: Job, resumed: bool) -> JobOutcome:
    # channels_redis keeps connections per event loop and closes this loop's
    # own when asyncio.run closes the loop; nothing to close by hand.
    run = JobRun(job, resumed)
    await push(job)
    try:
        runner: Runner = import_string(RUNNERS[job.kind].runner)
        return await runner(run)
    except BrokerError as exc:
        return JobOutcome(Job.State.FAILED, f"Failed: {exc.message}", done=job.done)
    except Exception as exc:
        log.exception("job #%s (%s) failed", job.pk, job.kind)
        return JobOutcome(
            Job.State.FAILED,
            f"Failed with an internal error ({type(exc).__name__}); see the worker's log.",
            done=job.done,
        )


def _finish(job_id: int, outcome: JobOutcome) -> str:
    if outcome.state == Job.State.DONE and _state(job_id) == Job.State.CANCELLED:
        # The cancel came after the runner's last look: the user was told
        # "cancelled", so it stays cancelled; the verdict says all was done.
        outcome = replace(
            outcome, state=Job.State.CANCELLED, verdict=f"Cancelled as it ended. {outcome.verdict}"
        )
    Job.objects.filter(pk=job_id).update(
        state=outcome.state,
        verdict=outcome.verdict,
        done=outcome.done,
        failed=outcome.failed,
        total=outcome.total,
        result=outcome.result,
        finished_at=timezone.now(),
        progress_at=timezone.now(),
    )
    job = get_job(job_id)
    failed = outcome.state == Job.State.FAILED
    record(
        action=f"{job.kind}.finished",
        user=job.created_by,
        outcome=AuditEntry.Outcome.FAILED if failed else AuditEntry.Outcome.OK,
        cluster=job.cluster,
        target=f"job #{job.pk}",
        parameters={"job": job.pk, "state": outcome.state, "done": outcome.done, **outcome.result},
        detail=outcome.verdict,
    )
    push_job(job)
    return str(outcome.state)


def _state_and_task(job_id: int) -> tuple[str, str]:
    state, task_id = Job.objects.filter(pk=job_id).values_list("state", "task_id").get()
    return str(state), str(task_id)


def _state(job_id: int) -> str:
    return str(Job.objects.filter(pk=job_id).values_list("state", flat=True).get())
