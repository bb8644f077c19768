"""Starting, watching and steering jobs: the web side of the job framework."""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.contrib.auth.models import User as DjangoUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from brokers.base import BrokerUnavailable
from dashboard.core.audit import record
from dashboard.core.display import label
from dashboard.core.roles import OPERATOR, has_role
from dashboard.jobs.events import COUNTS, JobOut, JobProgress
from dashboard.models import AuditEntry, Cluster, Job

log = logging.getLogger(__name__)

User = AbstractBaseUser | AnonymousUser


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its runner, and how the job page names it and says what it does.

    ``runner`` is the dotted path of ``async def run(run: JobRun) -> JobOutcome``;
    ``template`` is included by the job page with ``job`` and ``p`` (its parameters);
    ``counts``, if set, the dotted path of ``def counts(job: Job) -> dict[str, int]``:
    what the job's page shows read now from what the job touched (it may change after
    the job ended, e.g. requeued letters that came back).
    ``helper``, if set, the dotted path of ``async def help(run: JobRun) -> None``: a
    runner that works the same job beside its runner, started by it
    (:func:`enqueue_helpers`); the job's runner alone ends it with the verdict.
    """

    runner: str
    title: str
    template: str
    counts: str = ""
    helper: str = ""


RUNNERS: dict[str, JobKind] = {
    "rabbitmq.move": JobKind(
        "dashboard.jobs.move.run_move_job", "move messages", "jobs/_move.html"
    ),
    "deadletters.requeue": JobKind(
        "dashboard.deadletters.requeue_job.run_requeue_job",
        "requeue dead letters",
        "deadletters/_requeue_job.html",
        "dashboard.deadletters.requeue_job.live_counts",
        "dashboard.deadletters.requeue_job.help_requeue_job",
    ),
}
"""Job kind -> its :class:`JobKind`."""
COUNTS.update({kind: job.counts for kind, job in RUNNERS.items() if job.counts})

LIVE = (Job.State.QUEUED, Job.State.RUNNING, Job.State.PAUSED)
MAX_RATE = 1_000_000.0
"""The highest rate limit a job takes, in messages per second."""
FINAL = (Job.State.DONE, Job.State.FAILED, Job.State.CANCELLED)


class JobNotFound(LookupError):
    pass


class JobStateError(ValueError):
    """The job is not in a state that allows this (e.g. resuming a finished job)."""


class InvalidRate(ValueError):
    """A rate limit that is not a finite number of messages per second within bounds."""


def parse_rate_limit(value: Any, *, zero_is_none: bool = False) -> float | None:
    """A job's rate limit from user input: None (no limit) or a number in (0, MAX_RATE].

    NaN and infinities are refused here: they would stall a job or break the
    audit entry's JSON.
    """
    if value is None or value == "" or (zero_is_none and value in (0, "0")):
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRate("rate_limit must be a number (messages per second)")
    try:
        rate = float(value)
    except ValueError:
        raise InvalidRate("rate_limit must be a number (messages per second)") from None
    if zero_is_none and rate == 0:
        return None
    if not math.isfinite(rate) or not 0 < rate <= MAX_RATE:
        raise InvalidRate(
            f"rate_limit must be more than 0 and at most {MAX_RATE:,.0f} messages per second"
            " (or empty for no limit)"
        )
    return rate


def kind_title(kind: str) -> str:
    """How pages name a job kind ("Requeue dead letters"); an unknown kind reads as words."""
    known = RUNNERS.get(kind)
    title = known.title if known is not None else label(kind)
    return title[:1].upper() + title[1:]


def group_name(job_id: int) -> str:
    return f"job.{job_id}"


def job_json(job: Job) -> dict[str, Any]:
    """What pages, the API and the websocket show of a job (:class:`JobOut`), as JSON."""
    return JobOut.of(job).model_dump(mode="json")


def get_job(job_id: int) -> Job:
    job = Job.objects.select_related("cluster", "created_by").filter(pk=job_id).first()
    if job is None:
        raise JobNotFound(f"no job #{job_id}")
    return job


def get_recent_jobs(limit: int = 50) -> list[Job]:
    return list(Job.objects.select_related("cluster", "created_by").order_by("-pk")[:limit])


def push_job(job: Job) -> None:
    """Send the job's state to everyone watching it (from sync code)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group_name(job.pk), JobProgress.of_job(job).as_json())
    except Exception:
        # The page polls nothing: a lost push only delays what it shows until
        # the next one; the database row is the truth.
        log.warning("could not push job #%s to its watchers", job.pk, exc_info=True)


def do_start_job(
    *,
    kind: str,
    cluster: Cluster | None,
    parameters: dict[str, Any],
    user: User,
    target: str,
    selection: Any = None,
    rate_limit: float | None = None,
    total: int | None = None,
    request: HttpRequest | None = None,
) -> Job:
    """Create the job, record who started it, hand it to the worker. Callers check roles."""
    if kind not in RUNNERS:
        raise ValueError(f"unknown job kind {kind!r}")
    real_user = user if isinstance(user, DjangoUser) and user.is_authenticated else None
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            cluster=cluster,
            created_by=real_user,
            parameters=parameters,
            selection=selection if selection is not None else [],
            rate_limit=rate_limit,
            total=total,
            task_id=uuid.uuid4().hex,
        )
        record(
            action=kind,
            user=user,
            cluster=cluster,
            target=target,
            parameters={**parameters, "job": job.pk, "rate_limit": rate_limit},
            detail=f"job #{job.pk} queued",
            request=request,
        )
    try:
        enqueue(job)
    except Exception as exc:
        log.exception("could not queue job #%s", job.pk)
        Job.objects.filter(pk=job.pk).update(
            state=Job.State.FAILED,
            finished_at=timezone.now(),
            verdict=f"Not started: the job queue is unavailable ({type(exc).__name__}).",
        )
        raise BrokerUnavailable(
            "the dashboard's job queue (Redis) is unavailable; nothing was started"
        ) from None
    return job


def enqueue(job: Job) -> None:
    """Hand the job to a worker; the task id lets the worker ignore stale deliveries."""
    from dashboard.celery import app

    app.send_task("dashboard.run_job", args=[job.pk], task_id=job.task_id)


def enqueue_helpers(job: Job, count: int) -> None:
    """Start ``count`` helpers of the job's current run on the jobs queue (its kind's helper).

    A helper serves the run whose task id it was given: once the job is
    started again under another task id, it stops at its next look.
    """
    from dashboard.celery import app, jobs_queue

    for _ in range(count):
        app.send_task("dashboard.help_job", args=[job.pk, job.task_id], queue=jobs_queue())


def _control(
    job_id: int,
    *,
    action: str,
    allowed: tuple[str, ...],
    user: User,
    request: HttpRequest | None,
    changes: dict[str, Any],
) -> Job:
    job = get_job(job_id)
    if not has_role(user, OPERATOR):
        record(
            action=f"job.{action}",
            user=user,
            outcome=AuditEntry.Outcome.REFUSED,
            cluster=job.cluster,
            target=f"job #{job.pk}",
            detail=f"needs the {OPERATOR} role",
            request=request,
        )
        raise PermissionDenied(f"this needs the {OPERATOR} role")
    updated = Job.objects.filter(pk=job.pk, state__in=allowed).update(**changes)
    job.refresh_from_db()
    if not updated:
        raise JobStateError(f"job #{job.pk} is {job.state}: it cannot be {action}d now")
    record(
        action=f"job.{action}",
        user=user,
        cluster=job.cluster,
        target=f"job #{job.pk}",
        parameters={"job": job.pk, "kind": job.kind, "done": job.done, "total": job.total},
        request=request,
    )
    push_job(job)
    return job


def do_pause_job(job_id: int, *, user: User, request: HttpRequest | None = None) -> Job:
    """The worker stops taking messages at its next report (about every 0.5 s)."""
    return _control(
        job_id,
        action="pause",
        allowed=(Job.State.QUEUED, Job.State.RUNNING),
        user=user,
        request=request,
        changes={"state": Job.State.PAUSED},
    )


def do_resume_job(job_id: int, *, user: User, request: HttpRequest | None = None) -> Job:
    job = get_job(job_id)
    state = Job.State.RUNNING if job.started_at is not None else Job.State.QUEUED
    return _control(
        job_id,
        action="resume",
        allowed=(Job.State.PAUSED,),
        user=user,
        request=request,
        changes={"state": state},
    )


def do_cancel_job(job_id: int, *, user: User, request: HttpRequest | None = None) -> Job:
    """A queued job ends at once; a running one stops at its next report."""
    job = get_job(job_id)
    changes: dict[str, Any] = {"state": Job.State.CANCELLED}
    if job.started_at is None:
        changes.update(finished_at=timezone.now(), verdict="Cancelled before it started.")
    return _control(
        job_id, action="cancel", allowed=LIVE, user=user, request=request, changes=changes
    )
