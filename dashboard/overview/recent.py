"""The clusters' last stored checks, reused by a web process for at most a second.

``/api/clusters/health`` and the overview answer every viewer from the last stored
check of each cluster (its ``Cluster`` row, written by the collector or a *check
now*). Reading the rows costs a query and a trip to a thread per request; fifty
viewers polling would repeat it for an answer that changes once per collector
interval. Each web process keeps the configs and rows it read last for
``MQB_HEALTH_REUSE_SECONDS`` (0: read every time) and answers from them in the
event loop. Ages stay exact: ``age_seconds`` and ``stale`` are computed at each
answer. A ``Cluster`` row saved or deleted in this process (a *check now*) drops
the kept rows at once; another process's write is seen within the reuse time.

Kept rows are shared between requests: callers must not change them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from brokers.base import ClusterConfig
from dashboard.core import clusters
from dashboard.core.clusters import ClusterHealth, health_of_row
from dashboard.models import Cluster

Kept = tuple[float, tuple[ClusterConfig, ...], dict[str, Cluster]]
_kept: Kept | None = None


def _read() -> Kept:
    configs = clusters.get_cluster_configs()
    rows = {r.slug: r for r in Cluster.objects.filter(slug__in=[c.slug for c in configs])}
    return time.monotonic(), configs, rows


async def recent_health() -> list[ClusterHealth]:
    """Every configured cluster's last stored check, aged now (no broker connection)."""
    global _kept
    kept = _kept
    max_age = float(settings.MQB_HEALTH_REUSE_SECONDS)
    if kept is None or time.monotonic() - kept[0] >= max_age:
        kept = await sync_to_async(_read)()
        if max_age > 0:
            _kept = kept
    _at, configs, rows = kept
    now = datetime.now(UTC)
    return [health_of_row(c, rows.get(c.slug), now) for c in configs]


def forget() -> None:
    global _kept
    _kept = None


@receiver(post_save, sender=Cluster)
@receiver(post_delete, sender=Cluster)
def _cluster_changed(sender: type[Cluster], **kwargs: object) -> None:
    forget()
