"""Downsampling (raw -> per-minute -> per-hour) and retention, run by Celery beat.

A target bucket (a minute, an hour) is computed from the source tier's rows
in it: each entity's value at each source heartbeat (carried forward, see
``tiers``), averaged over the heartbeats. A bucket without any source
heartbeat gets no target heartbeat: the gap stays a gap. Target rows follow
the same "on change, and once per period" rule as raw rows, so idle entities
cost one row per hour in the minute tier and one per day in the hour tier.

Progress is the newest target heartbeat of each cluster, so a run that was
interrupted, or a worker that was down for a day, simply continues; a run
handles at most ``max_buckets`` buckets per cluster and tier. Retention
never deletes source rows the next tier has not been computed from yet.
"""

from __future__ import annotations

import time as clock
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction

from brokers.base.metrics import FIELDS, NO_VALUES, Values
from dashboard.metrics.fields import INT_FIELDS
from dashboard.metrics.history import carry_forward
from dashboard.metrics.store import Row, insert_rows
from dashboard.metrics.tiers import HOUR, MINUTE, RAW, Tier, floor
from dashboard.models import Cluster, Consumer, ThroughputSample

GRACE = 20.0
"""Seconds after a bucket ends before it is final (the last sample may still be written)."""
DELETE_CHUNK = 5000
Key = tuple[str, str]


def _dt(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def mean_values(samples: list[Values | None]) -> Values:
    """Per field, the mean of the known values; None where none is known."""
    result: list[Any] = []
    for i, name in enumerate(FIELDS):
        known = [s[i] for s in samples if s is not None and s[i] is not None]
        if not known:
            result.append(None)
        elif name in INT_FIELDS:
            result.append(round(sum(known) / len(known)))  # type: ignore[arg-type]
        else:
            result.append(round(sum(known) / len(known), 3))  # type: ignore[arg-type]
    return tuple(result)


def _rows_between(tier: Tier, start: float, end: float) -> list[tuple[Any, ...]]:
    # Only the time range is a condition the index on time can serve; filtering
    # by cluster in SQL would tempt the planner into scanning a whole cluster.
    return list(
        ThroughputSample.objects.filter(
            resolution=tier.name, time__gte=_dt(start), time__lt=_dt(end)
        )
        .order_by("time")
        .values_list("cluster_id", "entity_type", "entity", "time", *FIELDS)
    )


class _ClusterPass:
    def __init__(self, cluster_id: int, slug: str, source: Tier, target: Tier) -> None:
        self.cluster_id, self.slug, self.source, self.target = cluster_id, slug, source, target
        self.beats = ThroughputSample.objects.filter(
            cluster_id=cluster_id, entity_type="cluster", entity=slug
        )
        self.previous: dict[Key, Values] = {}
        self.period: float | None = None

    def first_bucket(self) -> float | None:
        done = (
            self.beats.filter(resolution=self.target.name)
            .order_by("-time")
            .values_list("time", flat=True)
            .first()
        )
        start = floor(done.timestamp(), self.target.bucket) + self.target.bucket if done else None
        return self.next_bucket(start)

    def next_bucket(self, at_or_after: float | None) -> float | None:
        query = self.beats.filter(resolution=self.source.name)
        if at_or_after is not None:
            query = query.filter(time__gte=_dt(at_or_after))
        found = query.order_by("time").values_list("time", flat=True).first()
        return floor(found.timestamp(), self.target.bucket) if found else None

    def run(self, until: float, max_buckets: int) -> tuple[int, float]:
        """Compute the buckets that end by ``until``: (rows written, time the tier is
        complete up to), which is ``until`` unless ``max_buckets`` stopped the run early."""
        size = self.target.bucket
        bucket = self.first_bucket()
        written, done = 0, 0
        while bucket is not None and bucket + size <= until:
            if done >= max_buckets:
                return written, bucket
            rows = _rows_between(self.source, bucket, bucket + size)
            rows = [r for r in rows if r[0] == self.cluster_id]
            beats = [r for r in rows if r[1] == "cluster" and r[2] == self.slug]
            if not beats:
                bucket = self.next_bucket(bucket + size)
                continue
            written += self._write_bucket(bucket, rows, beats)
            done += 1
            bucket += size
        return written, until

    def _load_previous(self, bucket: float) -> None:
        period = floor(bucket, self.target.period)
        if period == self.period:
            return
        self.period = period
        self.previous = {}
        for row in _rows_between(self.target, period, bucket):
            if row[0] == self.cluster_id and row[1] != "cluster":
                self.previous[(row[1], row[2])] = tuple(row[4:])

    def _write_bucket(self, bucket: float, rows: list[tuple[Any, ...]], beats: list[Any]) -> int:
        self._load_previous(bucket)
        times = [b[3].timestamp() for b in beats]
        entities: dict[Key, list[tuple[float, Values]]] = defaultdict(list)
        for r in rows:
            if r[1] != "cluster":
                entities[(r[1], r[2])].append((r[3].timestamp(), tuple(r[4:])))
        at = _dt(bucket)
        head = (self.cluster_id,)
        tail = (self.target.name, connection.ops.adapt_datetimefield_value(at))
        beat = mean_values([tuple(b[4:]) for b in beats])
        out: list[Row] = [(*head, "cluster", self.slug, *tail, *beat)]
        for key, series in entities.items():
            value = mean_values(carry_forward(times, series, self.target.bucket))
            if self.previous.get(key) != value:
                out.append((*head, *key, *tail, *value))
                self.previous[key] = value
        for key, value in list(self.previous.items()):
            if key not in entities and value != NO_VALUES:
                # Gone from the source bucket: it no longer exists.
                out.append((*head, *key, *tail, *NO_VALUES))
                self.previous[key] = NO_VALUES
        # One statement per bucket (per 5,000 rows): COPY on PostgreSQL, executemany on SQLite.
        with transaction.atomic():
            insert_rows(out)
        return len(out)


def downsample(now: float | None = None, max_buckets: int = 240) -> dict[str, int]:
    """Bring the minute tier, then the hour tier, up to date for every cluster."""
    now = clock.time() if now is None else now
    written = {"minute": 0, "hour": 0}
    for cluster_id, slug in Cluster.objects.values_list("pk", "slug"):
        rows, minutes_done = _ClusterPass(cluster_id, slug, RAW, MINUTE).run(
            now - GRACE, max_buckets
        )
        written["minute"] += rows
        # An hour is final once every minute in it has been computed.
        rows, _ = _ClusterPass(cluster_id, slug, MINUTE, HOUR).run(minutes_done, max_buckets)
        written["hour"] += rows
    return written


def _newest_beat(cluster_id: int, slug: str, tier: Tier, *, oldest: bool = False) -> float | None:
    found = (
        ThroughputSample.objects.filter(
            cluster_id=cluster_id, entity_type="cluster", entity=slug, resolution=tier.name
        )
        .order_by("time" if oldest else "-time")
        .values_list("time", flat=True)
        .first()
    )
    return found.timestamp() if found else None


def _delete_before(tier: Tier, cutoff: float) -> int:
    deleted = 0
    while True:
        ids = list(
            ThroughputSample.objects.filter(resolution=tier.name, time__lt=_dt(cutoff)).values_list(
                "pk", flat=True
            )[:DELETE_CHUNK]
        )
        if not ids:
            return deleted
        deleted += ThroughputSample.objects.filter(pk__in=ids).delete()[0]


def apply_retention(now: float | None = None) -> dict[str, int]:
    """Delete samples past their tier's retention, consumers not seen for long."""
    now = clock.time() if now is None else now
    keep = {
        RAW: max(2 * 3600, settings.MQB_METRICS_RAW_HOURS * 3600),
        MINUTE: max(2 * 86400, settings.MQB_METRICS_MINUTE_DAYS * 86400),
        HOUR: max(8 * 86400, settings.MQB_METRICS_HOUR_DAYS * 86400),
    }
    nexts = {RAW: MINUTE, MINUTE: HOUR}
    clusters = list(Cluster.objects.values_list("pk", "slug"))
    deleted: dict[str, int] = {}
    for tier, seconds in keep.items():
        cutoff = now - seconds
        following = nexts.get(tier)
        if following is not None:
            # Never delete what the next tier has not been computed from: a
            # cluster with samples but nothing downsampled yet keeps them all.
            for pk, slug in clusters:
                frontier = _newest_beat(pk, slug, following)
                if frontier is not None:
                    frontier += following.bucket  # that whole bucket is computed
                else:
                    frontier = _newest_beat(pk, slug, tier, oldest=True)
                if frontier is not None:
                    cutoff = min(cutoff, frontier)
        deleted[tier.name] = _delete_before(tier, cutoff)
    forget = _dt(now) - timedelta(days=settings.MQB_METRICS_CONSUMER_DAYS)
    deleted["consumers"] = Consumer.objects.filter(last_seen__lt=forget).delete()[0]
    return deleted
