"""Downsampling raw -> minute -> hour, gaps kept as gaps, retention, the beat tasks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from brokers.base.metrics import ClusterSample, Point
from dashboard.celery import app
from dashboard.metrics.downsample import apply_retention, downsample, mean_values
from dashboard.metrics.history import get_history
from dashboard.metrics.store import SampleWriter
from dashboard.models import Cluster, Consumer, ThroughputSample

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 10, 0, 0, tzinfo=UTC)
Q = "%2F/orders"


def values(depth: int | None, rate: float | None = 0.0) -> tuple[Any, ...]:
    return (depth, depth, 0, rate, rate, rate, 1, None, None)


@pytest.fixture
def writer():
    cluster = Cluster.objects.create(slug="c", kind="rabbitmq", name="c")
    return SampleWriter(cluster.pk, "c")


def feed(writer, start: datetime, seconds: int, depth_at, every: int = 5) -> None:
    """Samples every ``every`` s for ``seconds``; ``depth_at(offset)`` None = queue absent."""
    for offset in range(0, seconds, every):
        depth = depth_at(offset)
        points = () if depth is None else (Point("queue", Q, values(depth, float(depth))),)
        writer.write(
            ClusterSample(
                "c", "rabbitmq", start + timedelta(seconds=offset), values(0), points, None, 0
            )
        )


def tier(resolution: str, entity: str = Q) -> list[tuple[Any, ...]]:
    return list(
        ThroughputSample.objects.filter(resolution=resolution, entity=entity)
        .order_by("time")
        .values_list("time", "depth", "publish_rate")
    )


def test_the_mean_ignores_unknowns_and_keeps_counts_whole():
    assert mean_values([values(1, 1.0), values(2, None), None])[:4] == (2, 2, 0, 1.0)
    assert mean_values([None, None]) == (None,) * 9


def test_a_minute_is_the_mean_over_its_samples_carried_forward(writer):
    feed(writer, T0, 60, lambda s: 0 if s < 30 else 10)  # 6 samples at 0, 6 at 10
    feed(writer, T0 + timedelta(minutes=1), 60, lambda s: 10)
    feed(writer, T0 + timedelta(minutes=2), 60, lambda s: 10)
    downsample(now=(T0 + timedelta(minutes=3, seconds=30)).timestamp())
    minutes = tier("minute")
    assert [(t.minute, d) for t, d, _ in minutes] == [(0, 5), (1, 10)], "minute 2 is unchanged"
    assert minutes[0][2] == 5.0
    assert len(tier("minute", "c")) == 3, "one heartbeat per minute sampled"


def test_downsampling_twice_writes_nothing_new(writer):
    feed(writer, T0, 120, lambda s: s)
    now = (T0 + timedelta(minutes=3)).timestamp()
    downsample(now=now)
    count = ThroughputSample.objects.filter(resolution="minute").count()
    assert downsample(now=now) == {"minute": 0, "hour": 0}
    assert ThroughputSample.objects.filter(resolution="minute").count() == count


def test_a_minute_without_samples_stays_a_gap(writer):
    feed(writer, T0, 60, lambda s: 1)
    feed(writer, T0 + timedelta(minutes=3), 60, lambda s: 2)  # minutes 1 and 2: collector down
    downsample(now=(T0 + timedelta(minutes=5)).timestamp())
    beats = [t.minute for t, _, _ in tier("minute", "c")]
    assert beats == [0, 3]
    history = get_history("c", "queue", Q, "24h", now=(T0 + timedelta(minutes=5)).timestamp())
    assert history.series["depth"] == [1, None, 2], "a null point marks the gap"


def test_a_deleted_queue_ends_with_a_null_minute(writer):
    feed(writer, T0, 60, lambda s: 4)
    feed(writer, T0 + timedelta(minutes=1), 60, lambda s: None)
    feed(writer, T0 + timedelta(minutes=2), 60, lambda s: None)
    downsample(now=(T0 + timedelta(minutes=4)).timestamp())
    assert [d for _, d, _ in tier("minute")] == [4, None]


def test_hours_come_from_minutes_and_idle_queues_cost_one_row_per_period(writer):
    start = T0 - timedelta(hours=T0.hour)  # midnight, so the hours fall in one day
    for minute in range(0, 180, 1):
        at = start + timedelta(minutes=minute)
        writer.write(
            ClusterSample("c", "rabbitmq", at, values(0), (Point("queue", Q, values(7)),), None, 0)
        )
    downsample(now=(start + timedelta(hours=3, minutes=2)).timestamp(), max_buckets=1000)
    minutes = tier("minute")
    assert [(t.hour, t.minute) for t, _, _ in minutes] == [(0, 0), (1, 0), (2, 0)]
    hours = tier("hour")
    assert [(t.hour, d) for t, d, _ in hours] == [(0, 7)], "same value all day: one row"
    assert len(tier("hour", "c")) == 3
    history = get_history("c", "queue", Q, "7d", now=(start + timedelta(hours=3)).timestamp())
    assert history.series["depth"][-3:] == [7, 7, 7]


def test_a_capped_run_continues_where_it_stopped(writer):
    feed(writer, T0, 300, lambda s: s // 60)
    now = (T0 + timedelta(minutes=6)).timestamp()
    downsample(now=now, max_buckets=2)
    assert len(tier("minute", "c")) == 2
    downsample(now=now, max_buckets=2)
    downsample(now=now, max_buckets=2)
    assert [d for _, d, _ in tier("minute")] == [0, 1, 2, 3, 4]


def test_retention_deletes_old_rows_but_never_uncomputed_raw_rows(writer, settings):
    settings.MQB_METRICS_RAW_HOURS = 2
    feed(writer, T0, 120, lambda s: 1)
    old_consumer = Consumer.objects.create(
        cluster_id=writer.cluster_id, kind="amqp", identity="x", source=Q,
        first_seen=T0, last_seen=T0,
    )  # fmt: skip
    much_later = (T0 + timedelta(hours=5)).timestamp()
    deleted = apply_retention(now=much_later)
    assert deleted["raw"] == 0, "the minute tier has not been computed from them yet"
    downsample(now=much_later)
    deleted = apply_retention(now=much_later)
    assert deleted["raw"] > 0
    assert not ThroughputSample.objects.filter(resolution="raw").exists()
    assert ThroughputSample.objects.filter(resolution="minute").exists()
    assert Consumer.objects.filter(pk=old_consumer.pk).exists(), "seen within 30 days"
    apply_retention(now=(T0 + timedelta(days=31)).timestamp())
    assert not Consumer.objects.filter(pk=old_consumer.pk).exists()


def test_the_beat_schedule_runs_both_tasks():
    app.loader.import_default_modules()
    schedule = app.conf.beat_schedule
    tasks = {entry["task"] for entry in schedule.values()}
    assert {"dashboard.metrics.downsample", "dashboard.metrics.retention"} <= tasks
    assert "dashboard.metrics.downsample" in app.tasks
    assert "dashboard.metrics.retention" in app.tasks
