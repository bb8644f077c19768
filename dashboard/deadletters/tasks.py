"""Worker side of the dead-letter bulk requeue: importing it registers the job kind.

The job itself runs in the generic ``dashboard.run_job`` task (dashboard/jobs/tasks.py);
this module only makes sure the worker knows the ``deadletters.requeue`` runner.
"""

from __future__ import annotations

from dashboard.deadletters import requeue_job

__all__ = ["requeue_job"]
