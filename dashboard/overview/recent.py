"""The clusters' last stored checks, reused by a web process for at most a second.

``/api/clusters/health`` and the overview answer every viewer from the last stored
check of each cluster (its ``Cluster`` row, written by the collector or a *check
now*). Reading the rows costs a query and a trip to a thread per request; fifty
viewers polling would repeat it for an answer that changes once per collector
interval. Each web process keeps the configs and rows it read last for
``MQB_HEALTH_REUSE_SECONDS`` (0: read every time) and answers from them in the
event loop. What a read's rows make (each cluster's ``ClusterHealth``, parsed from
the stored JSON once, and whatever a caller builds from them with
:func:`built_once`, e.g. the API's JSON) is made once per read; each answer only
ages it: ``age_seconds`` and ``stale`` stay exact, computed at each answer. A
``Cluster`` row saved or deleted in this process (a *check now*) drops the kept rows
at once; another process's write is seen within the reuse time.

Kept rows are shared between requests: callers must not change them.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from brokers.base import ClusterConfig
from dashboard.core import clusters
from dashboard.core.clusters import ClusterHealth, health_of_row
from dashboard.models import Cluster

T = TypeVar("T")


@dataclass
class Kept:
    """One read: when (monotonic), the configs, and each cluster's check aged at ``read_at``."""

    at: float
    read_at: datetime
    configs: tuple[ClusterConfig, ...]
    checks: tuple[ClusterHealth, ...]
    built: dict[str, Any] = field(default_factory=dict)


_kept: Kept | None = None


def _read() -> Kept:
    configs = clusters.get_cluster_configs()
    rows = {r.slug: r for r in Cluster.objects.filter(slug__in=[c.slug for c in configs])}
    now = datetime.now(UTC)
    checks = tuple(health_of_row(c, rows.get(c.slug), now) for c in configs)
    return Kept(time.monotonic(), now, configs, checks)


async def _recent() -> Kept:
    global _kept
    kept = _kept
    max_age = float(settings.MQB_HEALTH_REUSE_SECONDS)
    if kept is None or time.monotonic() - kept.at >= max_age:
        kept = await sync_to_async(_read)()
        if max_age > 0:
            _kept = kept
    return kept


def age_of(check: ClusterHealth, now: datetime) -> tuple[float | None, bool]:
    """``age_seconds`` and ``stale`` of a stored check answered at ``now``."""
    if check.source != "collector" or check.checked_at is None:
        return check.age_seconds, check.stale
    age = max(0.0, (now - check.checked_at).total_seconds())
    return round(age, 3), age > settings.MQB_HEALTH_STALE_AFTER


async def recent_health() -> list[ClusterHealth]:
    """Every configured cluster's last stored check, aged now (no broker connection)."""
    kept = await _recent()
    now = datetime.now(UTC)
    aged = []
    for check in kept.checks:
        age, stale = age_of(check, now)
        aged.append(
            check
            if (age, stale) == (check.age_seconds, check.stale)
            else dataclasses.replace(check, age_seconds=age, stale=stale)
        )
    return aged


async def built_once(
    name: str, build: Callable[[tuple[ClusterHealth, ...]], T]
) -> tuple[T, tuple[ClusterHealth, ...]]:
    """``build(checks)`` made once per read of the rows (kept under ``name`` beside them),
    and the checks it was made from (not aged: see :func:`age_of`)."""
    kept = await _recent()
    if name not in kept.built:
        kept.built[name] = build(kept.checks)
    value: T = kept.built[name]
    return value, kept.checks


def forget() -> None:
    global _kept
    _kept = None


@receiver(post_save, sender=Cluster)
@receiver(post_delete, sender=Cluster)
def _cluster_changed(sender: type[Cluster], **kwargs: object) -> None:
    forget()
