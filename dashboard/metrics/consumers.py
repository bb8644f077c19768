"""The consumers page: every consumer the collector has seen, and who has none.

Consumers come from the ``Consumer`` table the collector keeps; "queues and
groups without a consumer" come from the latest sample in Redis (consumer
count 0), with the time their last consumer was last seen. One that has had
no consumer for longer than ``MQB_METRICS_NO_CONSUMER_SECONDS`` is flagged.
A queue or group that never had a consumer while the collector watched is
measured from when monitoring of it began (its first stored sample, never
before its cluster's): "since monitoring began", not longer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db.models import Max, Min, Q

from brokers.base.metrics import split_queue_entity, value
from brokers.registry import KINDS as BROKER_KINDS
from dashboard.metrics.snapshot import Snapshot, read_snapshots
from dashboard.metrics.tiers import TIERS
from dashboard.models import Cluster, Consumer, ThroughputSample

KINDS = tuple(Consumer.Kind.values)
# Consumers whose source is a queue, named by vhost and queue name.
QUEUE_CONSUMERS = frozenset({Consumer.Kind.AMQP, Consumer.Kind.CELERY})
STATES = ("active", "gone", "all")
MAX_UNCONSUMED = 100


@dataclass(frozen=True)
class ConsumerRow:
    cluster: str
    kind: str
    kind_label: str
    identity: str
    source: str
    vhost: str
    where: str
    topics: tuple[str, ...]
    client: str
    host: str
    state: str
    first_seen: datetime
    last_seen: datetime
    details: dict[str, Any]
    cluster_name: str = ""

    @property
    def label(self) -> str:
        """The consumer's name as a person reads it: its tag, "(no tag) #N" for a client's
        default tag ("None1": kombu without a tag prefix), "(no tag)" for none."""
        if self.kind != Consumer.Kind.AMQP:
            return self.identity
        tag = str(self.details.get("tag") or "")
        number = _DEFAULT_TAG.fullmatch(tag)
        if number:
            return f"(no tag) #{number.group(1)}"
        return tag or "(no tag)"

    @property
    def cluster_label(self) -> str:
        """The cluster's name; a Celery broker's bookkeeping row reads "Celery on host:port/db"."""
        return cluster_label(self.cluster, self.cluster_name)

    @property
    def is_group(self) -> bool:
        """A member of a Kafka consumer group: it consumes through its group, not a queue."""
        return self.kind == Consumer.Kind.KAFKA

    def as_json(self) -> dict[str, Any]:
        return {
            **{k: getattr(self, k) for k in ("cluster", "kind", "identity", "client", "host")},
            "source": self.where,
            "vhost": self.vhost or None,
            "topics": list(self.topics),
            "state": self.state,
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
            "details": self.details,
        }


@dataclass(frozen=True)
class Unconsumed:
    """A queue or group whose latest sample has no consumer."""

    cluster: str
    entity_type: str
    entity: str
    vhost: str
    name: str
    backlog: int | None
    last_consumer_seen: datetime | None
    idle_since: datetime | None
    monitored_since: datetime | None
    """when monitoring of it began, if no consumer was ever seen: it has had none since"""
    highlighted: bool

    @property
    def idle_seconds(self) -> float | None:
        return (
            None
            if self.idle_since is None
            else (datetime.now(UTC) - self.idle_since).total_seconds()
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "entity_type": self.entity_type,
            "vhost": self.vhost or None,
            "name": self.name,
            "backlog": self.backlog,
            "last_consumer_seen": _iso(self.last_consumer_seen),
            "idle_since": _iso(self.idle_since),
            "monitored_since": _iso(self.monitored_since),
            "highlighted": self.highlighted,
        }


@dataclass(frozen=True)
class ConsumersPage:
    consumers: tuple[ConsumerRow, ...]
    total: int
    limit: int
    unconsumed: tuple[Unconsumed, ...]
    unconsumed_total: int
    threshold: int
    sampled_at: dict[str, datetime | None]
    generated_at: datetime
    filters: dict[str, str]

    def as_json(self) -> dict[str, Any]:
        return {
            "consumers": [c.as_json() for c in self.consumers],
            "total": self.total,
            "limit": self.limit,
            "without_consumers": [u.as_json() for u in self.unconsumed],
            "without_consumers_total": self.unconsumed_total,
            "threshold_seconds": self.threshold,
            "sampled_at": {k: _iso(v) for k, v in self.sampled_at.items()},
            "generated_at": self.generated_at.isoformat(),
            "filters": self.filters,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _epoch(value: Any) -> datetime | None:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int | float) else None


# A client's default consumer tag when it has no prefix: "None1", "None2" (kombu).
_DEFAULT_TAG = re.compile(r"None(\d+)")


def cluster_label(slug: str, name: str) -> str:
    """A cluster as a person reads it. A Celery broker's row (``celery_<host>-<port>-<db>``,
    named "Celery broker <url>") reads as "Celery on <host>:<port>/<db>"; others keep their slug."""
    if not slug.startswith("celery_"):
        return slug
    url = name.removeprefix("Celery broker ").strip()
    parts = urlsplit(url) if "://" in url else None
    if parts is None or not parts.hostname:
        return "Celery on " + (url or slug.removeprefix("celery_"))
    where = parts.hostname + (f":{parts.port}" if parts.port else "")
    db = parts.path.strip("/")
    return f"Celery on {where}/{db}" if db else f"Celery on {where}"


def _row(c: Consumer, slug: str, cluster_name: str = "") -> ConsumerRow:
    details = c.details if isinstance(c.details, dict) else {}
    vhost, name = ("", c.source)
    if c.kind in QUEUE_CONSUMERS:
        vhost, name = split_queue_entity(c.source)
    topics = tuple(details.get("topics") or ())
    return ConsumerRow(
        cluster=slug,
        kind=c.kind,
        kind_label=c.get_kind_display(),
        identity=c.identity,
        source=c.source,
        vhost=vhost,
        where=name,
        topics=topics,
        client=c.client,
        host=c.host,
        state=c.state,
        first_seen=c.first_seen,
        last_seen=c.last_seen,
        details=details,
        cluster_name=cluster_name,
    )


def get_consumers_page(
    *, kind: str = "", cluster: str = "", state: str = "active", search: str = "", limit: int = 500
) -> ConsumersPage:
    """Consumers (filtered, newest first, at most ``limit``) and entities without any."""
    clusters = dict(Cluster.objects.values_list("pk", "slug"))
    names = dict(Cluster.objects.values_list("pk", "name"))
    query = Consumer.objects.all()
    if kind in KINDS:
        query = query.filter(kind=kind)
    if cluster:
        query = query.filter(cluster__slug=cluster)
    if state in ("active", "gone"):
        query = query.filter(state=state)
    if search:
        query = query.filter(
            Q(identity__icontains=search)
            | Q(source__icontains=search)
            | Q(client__icontains=search)
            | Q(host__icontains=search)
        )
    total = query.count()
    rows = query.order_by("kind", "cluster_id", "source", "-last_seen")[:limit]
    consumers = tuple(
        _row(c, clusters.get(c.cluster_id, "?"), names.get(c.cluster_id, "")) for c in rows
    )
    # Only sampled clusters have snapshots (not the bookkeeping rows of Celery brokers).
    sampled = Cluster.objects.filter(kind__in=sorted(BROKER_KINDS)).values_list("slug", flat=True)
    slugs = [s for s in sampled if not cluster or s == cluster]
    snapshots = read_snapshots(sorted(slugs))
    unconsumed, unconsumed_total = _unconsumed(snapshots, {v: k for k, v in clusters.items()})
    return ConsumersPage(
        consumers=consumers,
        total=total,
        limit=limit,
        unconsumed=unconsumed,
        unconsumed_total=unconsumed_total,
        threshold=settings.MQB_METRICS_NO_CONSUMER_SECONDS,
        sampled_at={s: _epoch(snap.sampled_at) for s, snap in snapshots.items()},
        generated_at=datetime.now(UTC),
        filters={"kind": kind, "cluster": cluster, "state": state, "q": search},
    )


def _unconsumed(
    snapshots: dict[str, Snapshot], cluster_ids: dict[str, int]
) -> tuple[tuple[Unconsumed, ...], int]:
    candidates: list[tuple[str, str, str, Any]] = []
    for slug, snap in snapshots.items():
        for entity, values in snap.rows("queue"):
            if value(values, "consumers") == 0:
                candidates.append((slug, "queue", entity, value(values, "depth")))
        for entity, values in snap.rows("group"):
            lag = value(values, "lag")
            if value(values, "consumers") == 0 and lag is not None:
                candidates.append((slug, "group", entity, lag))
    candidates.sort(key=lambda c: -(c[3] or 0))
    shown = candidates[:MAX_UNCONSUMED]
    last_seen: dict[tuple[str, str], datetime] = {}
    by_cluster: dict[str, list[str]] = {}
    for slug, _, entity, _ in shown:
        by_cluster.setdefault(slug, []).append(entity)
    for slug, entities in by_cluster.items():
        found = (
            Consumer.objects.filter(cluster_id=cluster_ids.get(slug, 0), source__in=entities)
            .exclude(kind="celery")
            .values("source")
            .annotate(last=Max("last_seen"))
        )
        for row in found:
            last_seen[(slug, row["source"])] = row["last"]
    watched = {
        slug: _watched_since(cluster_ids.get(slug), slug, entities)
        for slug, entities in by_cluster.items()
    }
    now = datetime.now(UTC)
    threshold = settings.MQB_METRICS_NO_CONSUMER_SECONDS
    result = []
    for slug, entity_type, entity, backlog in shown:
        seen = last_seen.get((slug, entity))
        began = watched[slug].get(entity) or watched[slug].get("")
        idle_since = seen or began
        vhost, name = split_queue_entity(entity) if entity_type == "queue" else ("", entity)
        result.append(
            Unconsumed(
                cluster=slug,
                entity_type=entity_type,
                entity=entity,
                vhost=vhost,
                name=name,
                backlog=backlog,
                last_consumer_seen=seen,
                idle_since=idle_since,
                monitored_since=None if seen else began,
                highlighted=idle_since is not None
                and (now - idle_since).total_seconds() > threshold,
            )
        )
    return tuple(result), len(candidates)


def _watched_since(cluster_id: int | None, slug: str, entities: list[str]) -> dict[str, datetime]:
    """When monitoring of each entity (and, under "", of the cluster) surely began.

    A row of a bucketed tier proves a sample somewhere in its bucket, not at its start: the
    oldest hourly row of a cluster watched for 20 minutes is up to an hour older than that.
    So each tier's oldest row counts as the end of its bucket, and the earliest of those is
    the latest moment monitoring can have begun. An entity is watched from its own first
    row (it may have appeared after the cluster), never before the cluster.
    """
    if cluster_id is None:
        return {}
    rows = (
        ThroughputSample.objects.filter(
            Q(entity_type="cluster", entity=slug)
            | Q(entity_type__in=("queue", "group"), entity__in=entities),
            cluster_id=cluster_id,
        )
        .values("entity_type", "entity", "resolution")
        .annotate(first=Min("time"))
    )
    found: dict[str, datetime] = {}
    now = datetime.now(UTC)
    for row in rows:
        bucket = TIERS[row["resolution"]].bucket if row["resolution"] in TIERS else 0
        began = min(row["first"] + timedelta(seconds=bucket), now)
        name = "" if row["entity_type"] == "cluster" else row["entity"]
        if name not in found or began < found[name]:
            found[name] = began
    cluster = found.get("")
    if cluster is not None:
        for name, began in found.items():
            found[name] = max(began, cluster)
    return found
