"""Starting again the jobs whose worker died.

The job queue is Redis, where a task that a killed worker held unacked comes
back only after the transport's visibility timeout (an hour by default). So
the dashboard does not wait for it: a job that is running (or paused) is
queued again under a new task id (the old delivery, when it comes back, no
longer matches the row and is ignored) when

- a worker starts with the name of the worker that ran it: that worker died
  (``revive_jobs_of_worker``, from Celery's ``worker_ready`` signal); or
- its last progress report is older than ``MQB_JOB_REVIVE_AFTER`` seconds: its
  worker is gone or hung (``revive_stale_jobs``, a periodic task).

The runner then continues from the row (``JobRun.resumed``).
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from dashboard.core.audit import record
from dashboard.jobs.control import enqueue
from dashboard.models import Job

log = logging.getLogger(__name__)

RUNNING = (Job.State.RUNNING, Job.State.PAUSED)


def _revive(jobs: QuerySet[Job], why: str) -> list[int]:
    revived = []
    for job in jobs:
        task_id = uuid.uuid4().hex
        # Conditional: two revivers (or a report arriving now) never double a job.
        taken = Job.objects.filter(pk=job.pk, task_id=job.task_id, state__in=RUNNING).update(
            task_id=task_id, worker="", progress_at=timezone.now()
        )
        if not taken:
            continue
        job.task_id = task_id
        enqueue(job)
        record(
            action=f"{job.kind}.revived",
            user=None,
            cluster=job.cluster,
            target=f"job #{job.pk}",
            parameters={"job": job.pk, "done": job.done},
            detail=why,
        )
        log.warning("job #%s queued again: %s", job.pk, why)
        revived.append(job.pk)
    return revived


def revive_jobs_of_worker(hostname: str) -> list[int]:
    """Queue again the jobs a worker of this name was running when it died."""
    if not hostname:
        return []
    jobs = Job.objects.filter(state__in=RUNNING, worker=hostname)
    return _revive(jobs, f"its worker {hostname} died and started again")


def revive_stale_jobs() -> list[int]:
    """Queue again the running jobs that have not reported for MQB_JOB_REVIVE_AFTER seconds."""
    since = timezone.now() - timedelta(seconds=settings.MQB_JOB_REVIVE_AFTER)
    jobs = Job.objects.filter(state__in=RUNNING).filter(
        Q(progress_at__lt=since) | Q(progress_at__isnull=True, started_at__lt=since)
    )
    return _revive(jobs, f"no progress for {settings.MQB_JOB_REVIVE_AFTER:g} s: its worker is gone")
