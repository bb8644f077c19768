"""Celery tasks: thin wrappers over services.

Tasks are bound to the dashboard's own app, not ``shared_task``: a process
that also loads another Celery app (the demo's) would otherwise send them with
that app's configuration.
"""

from __future__ import annotations

import logging
from typing import Any

from celery.signals import worker_ready

from dashboard.celery import app
from dashboard.jobs import revive, runner

log = logging.getLogger(__name__)


@app.task(name="dashboard.ping")  # type: ignore[untyped-decorator]
def ping(value: str) -> str:
    """Round trip through the broker and a worker; health checks and tests use it."""
    return f"pong:{value}"


@app.task(name="dashboard.run_job", bind=True, acks_late=True)  # type: ignore[untyped-decorator]
def run_job(self: Any, job_id: int) -> str:
    """Run a bulk job (a move, a requeue) to its end; progress goes to the Job row and websocket.

    acks_late: a worker that dies mid-job gets the task again, and the job's
    runner decides from the row what can be continued.
    """
    return runner.run_job(job_id, task_id=self.request.id, worker=self.request.hostname or "")


@app.task(name="dashboard.help_job", bind=True, acks_late=False)  # type: ignore[untyped-decorator]
def help_job(self: Any, job_id: int, task_id: str) -> str:
    """Work a job beside its runner (a shared bulk requeue); its runner gives the verdict.

    Not acks_late: a helper that dies is not delivered again; the job's runner
    and its other helpers take over its work.
    """
    return runner.run_helper(job_id, task_id, worker=self.request.hostname or "")


@app.task(name="dashboard.jobs.revive")  # type: ignore[untyped-decorator]
def revive_stale_jobs() -> list[int]:
    """Queue again the jobs whose worker stopped reporting (run by beat)."""
    return revive.revive_stale_jobs()


@worker_ready.connect  # type: ignore[untyped-decorator]
def revive_jobs_of_this_worker(sender: Any = None, **_: Any) -> None:
    """A worker starting under a name that was running jobs: that worker died; go on with them."""
    hostname = getattr(sender, "hostname", "") or ""
    try:
        revive.revive_jobs_of_worker(hostname)
    except Exception:
        # The worker must start even when the database is briefly unavailable;
        # the periodic revive catches these jobs later.
        log.exception("could not revive the jobs of %s", hostname)
