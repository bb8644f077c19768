"""Celery workers on the brokers metrics sampling cannot see (Redis), as consumer rows.

Workers on a monitored RabbitMQ are found by its sampler (their pidbox
consumer). A Redis broker cannot list its consumers, so the collector asks the
workers themselves (Celery's ``active_queues`` broadcast, ``brokers/
celery_workers.py``) every ``MQB_METRICS_CELERY_INTERVAL`` seconds, for each
URL in ``MQB_METRICS_CELERY_BROKERS`` (default: the dashboard's own
``CELERY_BROKER_URL`` when it is Redis).

``Consumer`` rows belong to a ``Cluster``; such a broker is not a configured
cluster, so it gets a bookkeeping row of kind ``redis`` whose slug contains an
underscore (``celery_<host>-<port>-<db>``), which configured slugs cannot
(``[a-z0-9-]``): it never collides with one, and no page or socket serves it.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.conf import settings

from brokers.base.metrics import SeenConsumer, queue_entity
from brokers.celery_workers import CeleryInspector, CeleryWorker, safe_url
from dashboard.models import Cluster

KIND = "redis"


def celery_broker_urls() -> list[str]:
    return [u for u in settings.MQB_METRICS_CELERY_BROKERS if u.lower() != "none"]


def broker_slug(url: str) -> str:
    parts = urlsplit(url)
    db = parts.path.strip("/") or "0"
    label = re.sub(r"[^a-z0-9]+", "-", f"{parts.hostname or ''}-{parts.port or ''}-{db}".lower())
    return f"celery_{label.strip('-')}"[:50]


def broker_cluster_row(url: str) -> Cluster:
    """The bookkeeping ``Cluster`` row the broker's workers are recorded under."""
    row, _ = Cluster.objects.update_or_create(
        slug=broker_slug(url),
        defaults={"kind": KIND, "name": f"Celery broker {safe_url(url)}"},
    )
    return row


def seen_workers(workers: tuple[CeleryWorker, ...], url: str) -> tuple[SeenConsumer, ...]:
    """One row per (worker, queue), like a worker seen on RabbitMQ; the source has no vhost."""
    shown = safe_url(url)
    return tuple(
        SeenConsumer(
            "celery",
            w.hostname,
            queue_entity("", q.name),
            shown,
            w.host,
            {
                "queue": q.name,
                "exchange": q.exchange,
                "routing_key": q.routing_key,
                "broker": shown,
            },
        )
        for w in workers
        for q in w.queues
    )


class CeleryBrokerSampler:
    """The workers of one Celery broker; ``sample`` blocks (run it in a thread)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.label = safe_url(url)
        self.inspector = CeleryInspector(
            url,
            timeout=settings.MQB_METRICS_CELERY_TIMEOUT,
            control_exchange=settings.MQB_METRICS_CELERY_CONTROL_EXCHANGE,
        )

    def sample(self) -> tuple[SeenConsumer, ...]:
        """Raises ``BrokerUnavailable`` when the broker cannot be asked."""
        return seen_workers(self.inspector.workers(), self.url)

    def close(self) -> None:
        self.inspector.close()
