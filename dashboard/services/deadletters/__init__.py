"""Dead letters: DLQ discovery and take-over, and storing what the collector captures.

``get_dead_letter_queues`` lists every DLQ of every cluster with its sources,
depth and managed state; ``do_manage_dlq`` / ``do_release_dlq`` (admin role,
audited) decide which ones the collector captures; ``store`` holds the
idempotent inserts the capture engines call, ``capture`` what the collector's
capture loop needs.
"""

from __future__ import annotations

from dashboard.services.deadletters.queues import (
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
