"""The Celery app that runs the dashboard's own jobs (not the demo's tasks).

Two queues, so that a long job never holds up a short task: bulk jobs
(``dashboard.run_job``: moves and requeues, which may run for hours, sleep for
a rate limit or sit paused) go to ``<MQB_CELERY_QUEUE>.jobs``, served by a
worker with a thread per job; everything else (beat's downsampling, retention
and revival, pings) goes to ``<MQB_CELERY_QUEUE>``, served by a worker of its
own (the ``Procfile`` starts both).

Every worker that serves the jobs queue also runs the scheduled-requeue
dispatcher in a thread of its own (``dashboard.deadletters.tasks.DispatcherStep``,
a worker bootstep added when the worker imports its task modules), not in a
slot of its pool: one of them at a time holds the
dispatch lease and sends due letters, the others stand by to take over.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")

# Long tasks (a thread each on the jobs queue): bulk jobs.
LONG_TASKS = frozenset({"dashboard.run_job"})


def jobs_queue() -> str:
    """The queue of long jobs: the default queue's name + ``.jobs``."""
    return f"{app.conf.task_default_queue}.jobs"


def route_task(name: str, args: Any, kwargs: Any, options: Any, **_: Any) -> dict[str, str] | None:
    # A function, not a dict: the default queue comes from settings, read only
    # once Django's settings are loaded (tests name it per run).
    return {"queue": jobs_queue()} if name in LONG_TASKS else None


app.conf.task_routes = (route_task,)

app.autodiscover_tasks(["dashboard.deadletters", "dashboard.jobs", "dashboard.metrics"])
