"""The collector's calls into alerts: after each full sample of a cluster (or its failure),
and after each answer of the Celery workers of a broker no sample covers (Redis).

Evaluation runs in the collector's database thread, fenced (``core.leader``: under
a collector's lease it commits only while that collector leads); an error in it is logged and
never stops sampling (a database error in one line: the metrics loop reports those
too). Then the process's sender (``delivery``) is started if needed and woken.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from asgiref.sync import sync_to_async
from django.db import DatabaseError, close_old_connections
from django.utils import timezone

from brokers.base.metrics import ClusterSample
from dashboard.alerts import delivery
from dashboard.alerts.engine import evaluate, evaluate_workers
from dashboard.alerts.manage import publish_ended_silences
from dashboard.core.leader import LeaseLost, fenced

log = logging.getLogger("dashboard.alerts")

_silences_lock = threading.Lock()
_silences_seen_until: datetime | None = None


def push_ended_silences() -> None:
    """Silences whose time ran out since this process last looked: their alerts count
    again on open pages (checked after each sample of any cluster, one query)."""
    global _silences_seen_until
    now = timezone.now()
    with _silences_lock:
        since, _silences_seen_until = _silences_seen_until, now
    if since is not None:
        publish_ended_silences(since, now)


async def after_sample(cluster_id: int, slug: str, sample: ClusterSample | None) -> None:
    try:
        outcome = await sync_to_async(fenced(evaluate))(cluster_id, slug, sample)
    except (DatabaseError, LeaseLost) as exc:
        log.warning("%s: alert rules not evaluated: %s", slug, exc)
        await sync_to_async(close_old_connections)()
        return
    except Exception:  # alerts must never stop the metrics loop
        log.exception("%s: alert rules not evaluated", slug)
        return
    if outcome.fired or outcome.resolved:
        log.info("%s: alerts %s", slug, outcome)
    try:
        await sync_to_async(push_ended_silences)()
    except DatabaseError as exc:
        log.warning("ended silences not pushed: %s", exc)
    delivery.wake()


async def after_workers(cluster_id: int, slug: str) -> None:
    """The ``celery_worker_gone`` rules of the workers' bookkeeping cluster, then the sender."""
    try:
        outcome = await sync_to_async(fenced(evaluate_workers))(cluster_id, slug)
    except (DatabaseError, LeaseLost) as exc:
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
