"""What the collector's capture loop needs: the managed DLQs, their engines, their errors.

The loop itself (``dashboard.collector.capture``) only decides when to start
and stop; everything that touches a broker or the database is here.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.utils import timezone

from brokers.base.deadletters import CaptureEngine, CaptureOptions
from brokers.registry import kind_of, require
from dashboard.core import clusters
from dashboard.deadletters.store import CaptureTarget, make_sink
from dashboard.models import ManagedDeadLetterQueue


@sync_to_async
def get_capture_targets() -> list[CaptureTarget]:
    """Active managed DLQs of the clusters configured now (others are left alone)."""
    configured = {
        c.slug: c.kind for c in clusters.get_cluster_configs() if kind_of(c).deadletters is not None
    }
    rows = ManagedDeadLetterQueue.objects.filter(active=True).select_related("cluster")
    return [
        CaptureTarget(
            managed_id=row.pk,
            cluster_id=row.cluster_id,
            slug=row.cluster.slug,
            kind=configured[row.cluster.slug],
            vhost=row.vhost,
            name=row.name,
        )
        for row in rows.order_by("pk")
        if row.cluster.slug in configured
    ]


def capture_group(slug: str) -> str:
    return settings.MQB_KAFKA_CAPTURE_GROUP.format(slug=slug)


def make_capture_engine(target: CaptureTarget) -> CaptureEngine:
    config = clusters.get_cluster_config(target.slug)
    deadletters = require(config, lambda k: k.deadletters, "dead-letter queues")
    options = CaptureOptions(
        batch_size=settings.MQB_DLQ_CAPTURE_BATCH,
        max_message_bytes=settings.MQB_DLQ_MAX_MESSAGE_BYTES,
        ack_delay=settings.MQB_DLQ_CAPTURE_ACK_DELAY,
        prefetch=settings.MQB_DLQ_CAPTURE_PREFETCH,
        group=capture_group(target.slug),
    )
    return deadletters.capture(config, target.vhost, target.name, make_sink(target), options)


@sync_to_async
def record_capture_error(target: CaptureTarget, message: str) -> None:
    ManagedDeadLetterQueue.objects.filter(pk=target.managed_id).update(
        capture_error=message[:2000], capture_error_at=timezone.now()
    )
