"""Live metrics pages (every cluster, one cluster, one entity) and Prometheus's /metrics.

Pages read the collector's latest snapshot (Redis) and render the chart
component, which loads its history from the API and follows the websocket.
"""

from __future__ import annotations

import hmac
import logging
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from prometheus_client import CONTENT_TYPE_LATEST
from redis.exceptions import RedisError

from brokers.base import ClusterConfig, ConfigError
from brokers.base.metrics import FIELDS, split_queue_entity
from brokers.registry import kind_of
from dashboard.core.clusters import get_cluster_config, get_cluster_configs
from dashboard.metrics.fields import ENTITY_TYPES, time_to_drain
from dashboard.metrics.prometheus import render_metrics
from dashboard.metrics.snapshot import Snapshot, read_snapshots

log = logging.getLogger(__name__)
TOP = 25
# The tables of a cluster's page, in this order, for the entity types its kind samples.
TABLES = {
    "queue": ("Deepest queues", "depth"),
    "group": ("Groups with the most lag", "lag"),
    "topic": ("Largest topics", "depth"),
}


def _snapshots(slugs: list[str]) -> tuple[dict[str, Snapshot], str]:
    try:
        return read_snapshots(slugs), ""
    except (OSError, RedisError) as exc:
        log.warning("cannot read metrics snapshots: %s", exc)
        return {
            s: Snapshot(s) for s in slugs
        }, "The dashboard's Redis is unavailable: no live numbers."


def _config(slug: str) -> ClusterConfig:
    try:
        return get_cluster_config(slug)
    except ConfigError:
        raise Http404(f"no cluster named {slug!r}") from None


def _entity_types(config: ClusterConfig) -> tuple[str, ...]:
    """The entity types besides the cluster that the cluster's kind samples."""
    metrics = kind_of(config).metrics
    return metrics.entity_types if metrics is not None else ()


def _moment(epoch: Any) -> datetime | None:
    return datetime.fromtimestamp(epoch, UTC) if isinstance(epoch, int | float) else None


def _status(snap: Snapshot) -> dict[str, Any]:
    """The collector's status of a cluster, with its times as datetimes (for ``{% when %}``)."""
    status = dict(snap.status)
    if status:
        status["sampled_at"] = _moment(status.get("sampled_at"))
        status["down_since"] = _moment(status.get("down_since"))
    return status


def _totals(snap: Snapshot) -> dict[str, Any]:
    """Every field's total; all None (unknown) before the first sample."""
    totals = snap.totals
    return dict(zip(FIELDS, totals, strict=True)) if totals else dict.fromkeys(FIELDS)


def metrics_home(request: HttpRequest) -> HttpResponse:
    configs = get_cluster_configs()
    snapshots, problem = _snapshots([c.slug for c in configs])
    clusters = [
        {
            "config": c,
            "status": _status(snapshots[c.slug]),
            "totals": _totals(snapshots[c.slug]),
            "sampled": snapshots[c.slug].totals is not None,
            # Total lag means something only where consumer groups are sampled.
            "shows_lag": "group" in _entity_types(c),
        }
        for c in configs
    ]
    return render(request, "metrics/home.html", {"clusters": clusters, "problem": problem})


# RabbitMQ lists no message stats for a queue without traffic; where the cluster's rates
# were read, such a queue's rates are known: zero.
QUEUE_RATES = ("publish_rate", "deliver_rate", "ack_rate")


def _rows(snap: Snapshot, entity_type: str, field: str) -> list[dict[str, Any]]:
    rows = []
    totals = _totals(snap)
    for entity, found in snap.top(entity_type, field, TOP):
        values = dict(found)
        vhost, name = split_queue_entity(entity) if entity_type == "queue" else ("", entity)
        if entity_type == "queue":
            for rate in QUEUE_RATES:
                if values.get(rate) is None and totals.get(rate) is not None:
                    values[rate] = 0.0
        drain = time_to_drain(entity_type, tuple(values.values()))
        rows.append({"vhost": vhost, "name": name, "values": values, "drain": drain})
    return rows


def cluster_metrics(request: HttpRequest, slug: str) -> HttpResponse:
    config = _config(slug)
    snapshots, problem = _snapshots([slug])
    snap = snapshots[slug]
    sampled = _entity_types(config)
    tables = [
        (entity_type, title, _rows(snap, entity_type, field), snap.count(entity_type))
        for entity_type, (title, field) in TABLES.items()
        if entity_type in sampled
    ]
    context = {
        "cluster": config,
        "status": _status(snap),
        "tables": tables,
        "problem": problem,
    }
    return render(request, "metrics/cluster.html", context)


def entity_metrics(request: HttpRequest, slug: str) -> HttpResponse:
    config = _config(slug)
    entity_type = request.GET.get("type", "")
    name = request.GET.get("name", "")
    vhost = request.GET.get("vhost", "")
    allowed = _entity_types(config)
    if (
        entity_type not in ENTITY_TYPES
        or entity_type not in allowed
        or not name
        or (entity_type == "queue" and not vhost)
    ):
        context = {"cluster": config, "allowed": allowed}
        return render(request, "metrics/bad_entity.html", context, status=400)
    context = {"cluster": config, "entity_type": entity_type, "name": name, "vhost": vhost}
    return render(request, "metrics/entity.html", context)


@login_not_required
def prometheus_metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition, for a scraper holding ``MQB_METRICS_TOKEN`` (no session)."""
    token = settings.MQB_METRICS_TOKEN
    if not token:
        raise Http404("the metrics endpoint is off: set MQB_METRICS_TOKEN")
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(
        given.strip().encode(), token.encode()
    ):
        return HttpResponse(
            "a valid bearer token is required\n", status=403, content_type="text/plain"
        )
    try:
        body = render_metrics()
    except (OSError, RedisError) as exc:
        log.warning("metrics exposition failed: %s", exc)
        return HttpResponse(
            "the dashboard's Redis is unavailable\n", status=503, content_type="text/plain"
        )
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
