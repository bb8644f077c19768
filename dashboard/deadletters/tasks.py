"""Worker side of dead letters: the bulk requeue's job kind and the scheduled-requeue dispatcher.

Importing ``requeue_job`` registers the ``deadletters.requeue`` runner (the job
itself runs in ``dashboard.run_job``). ``dashboard.deadletters.dispatch`` (beat,
every 2 s) runs the dispatcher while this process holds its lease (``dispatch``);
a warm shutdown stops it between batches and releases the lease.
"""

from __future__ import annotations

from typing import Any

from celery.signals import worker_shutting_down

from dashboard.celery import app
from dashboard.deadletters import dispatch, requeue_job

__all__ = ["requeue_job", "run_dispatcher"]


@app.task(name="dashboard.deadletters.dispatch", acks_late=False)  # type: ignore[untyped-decorator]
def run_dispatcher() -> str:
    """Carry out due scheduled requeues until the worker stops; returns at once when another
    worker's dispatcher holds the lease."""
    return dispatch.run_dispatcher()


@worker_shutting_down.connect  # type: ignore[untyped-decorator]
def stop_dispatcher(**_: Any) -> None:
    """A warm shutdown: the dispatcher ends after its current batch and releases its lease."""
    dispatch.STOP.set()
