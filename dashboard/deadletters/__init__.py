"""Dead letters: DLQ discovery and take-over, and storing what the collector captures.

``get_dead_letter_queues`` lists every DLQ of every cluster with its sources,
depth and managed state; ``do_manage_dlq`` / ``do_release_dlq`` (admin role,
audited) decide which ones the collector captures; ``store`` holds the
idempotent inserts the capture engines call, ``capture`` what the collector's
capture loop needs.

Modules: ``queues`` (DLQs, manage, release), ``capture`` / ``store`` /
``bulk_insert`` (what the collector captures), ``inbox`` (reading letters),
``requeue`` / ``requeue_batch`` / ``requeue_job`` (one letter, a batch, the bulk
job), ``discard``, ``stuck``, ``verdict``, ``retention``, ``celery_results``,
``common`` (roles and audit); ``views/`` the pages and ``urls`` their routes;
``api`` the JSON API's router and ``schemas`` its typed requests and answers;
``tasks`` registers the bulk requeue with the worker.
"""

from __future__ import annotations

from dashboard.deadletters.queues import (
    ClusterDeadLetterQueues,
    DeadLetterQueueRow,
    do_manage_dlq,
    do_release_dlq,
    get_dead_letter_queues,
)

__all__ = [
    "ClusterDeadLetterQueues",
    "DeadLetterQueueRow",
    "do_manage_dlq",
    "do_release_dlq",
    "get_dead_letter_queues",
]
