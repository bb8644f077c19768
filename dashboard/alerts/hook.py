"""The collector's calls into alerts: after each full sample of a cluster (or its failure),
and after each answer of the Celery workers of a broker no sample covers (Redis).

Evaluation runs in the collector's database thread; an error in it is logged and
never stops sampling (a database error in one line: the metrics loop reports those
too). Then the process's sender (``delivery``) is started if needed and woken.
"""

from __future__ import annotations

import logging

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections

from brokers.base.metrics import ClusterSample
from dashboard.alerts import delivery
from dashboard.alerts.engine import evaluate, evaluate_workers

log = logging.getLogger("dashboard.alerts")


async def after_sample(cluster_id: int, slug: str, sample: ClusterSample | None) -> None:
    try:
        outcome = await sync_to_async(evaluate)(cluster_id, slug, sample)
    except DatabaseError as exc:
        log.warning("%s: alert rules not evaluated: %s", slug, exc)
        await sync_to_async(close_old_connections)()
        return
    except Exception:  # alerts must never stop the metrics loop
        log.exception("%s: alert rules not evaluated", slug)
        return
    if outcome.fired or outcome.resolved:
        log.info("%s: alerts %s", slug, outcome)
    delivery.wake()


async def after_workers(cluster_id: int, slug: str) -> None:
    """The ``celery_worker_gone`` rules of the workers' bookkeeping cluster, then the sender."""
    try:
        outcome = await sync_to_async(evaluate_workers)(cluster_id, slug)
    except DatabaseError as exc:
        log.warning("%s: worker alert rules not evaluated: %s", slug, exc)
        await sync_to_async(close_old_connections)()
        return
    except Exception:  # alerts must never stop the workers loop
        log.exception("%s: worker alert rules not evaluated", slug)
        return
    if outcome.fired or outcome.resolved:
        log.info("%s: alerts %s", slug, outcome)
    if outcome.notifications:
        delivery.wake()
