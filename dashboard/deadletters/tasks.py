"""Worker side of dead letters: the bulk requeue's job kind and the dispatcher's thread.

Importing ``requeue_job`` registers the ``deadletters.requeue`` runner (the job
itself runs in ``dashboard.run_job``). The scheduled-requeue dispatcher is no
task: :class:`DispatcherStep`, a worker bootstep (added here, when the worker
imports its task modules, before it builds its bootsteps), runs it in a thread
of its own (``dispatch.DispatcherThread``) in every worker serving the jobs
queue.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps

from dashboard.celery import app, jobs_queue
from dashboard.deadletters import dispatch, requeue_job

__all__ = ["DispatcherStep", "requeue_job"]


class DispatcherStep(bootsteps.StartStopStep):  # type: ignore[misc]
    """The dispatcher's thread in a worker serving the jobs queue.

    Started with the worker (after its pool); a warm shutdown stops it before
    the pool (which waits for running jobs), so the lease is given back at
    once; a cold one leaves the lease to expire (the thread is a daemon).
    """

    requires = {"celery.worker.components:Pool"}

    def include_if(self, worker: Any) -> bool:
        return jobs_queue() in (worker.app.amqp.queues.consume_from or {})

    def create(self, worker: Any) -> dispatch.DispatcherThread:
        return dispatch.DispatcherThread()


app.steps["worker"].add(DispatcherStep)
