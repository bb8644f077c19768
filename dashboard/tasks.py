"""Celery tasks: thin wrappers over services.

Tasks are bound to the dashboard's own app, not ``shared_task``: a process
that also loads another Celery app (the demo's) would otherwise send them with
that app's configuration.
"""

from __future__ import annotations

from typing import Any

from dashboard.celery import app
from dashboard.services import jobs


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
    return jobs.run_job(job_id, task_id=self.request.id)
