"""Worker side of dead letters: the bulk requeue's job kind.

Importing ``requeue_job`` registers the ``deadletters.requeue`` runner (the job
itself runs in ``dashboard.run_job``). The scheduled-requeue dispatcher is no
task: each worker serving the jobs queue runs it in a thread of its own
(``dashboard.celery.DispatcherStep``, ``dispatch.DispatcherThread``).
"""

from __future__ import annotations

from dashboard.deadletters import requeue_job

__all__ = ["requeue_job"]
