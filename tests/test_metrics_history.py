"""Chart history: the right tier per range, carried-forward values, honest gaps, and speed."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection

from brokers.base.metrics import ClusterSample, Point
from dashboard.metrics.history import carry_forward, get_history
from dashboard.metrics.store import SampleWriter
from dashboard.models import Cluster

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 3, 2, 12, 0, 0, tzinfo=UTC)
Q = "%2F/orders"


def values(depth: int) -> tuple[Any, ...]:
    return (depth, depth, 0, 1.5, 1.0, 1.0, 2, None, None)


@pytest.fixture
def cluster():
    return Cluster.objects.create(slug="c", kind="rabbitmq", name="c")


def feed(cluster, times: list[datetime], depth_at) -> None:
    writer = SampleWriter(cluster.pk, "c")
    for at in times:
        depth = depth_at(at)
        points = () if depth is None else (Point("queue", Q, values(depth)),)
        writer.write(ClusterSample("c", "rabbitmq", at, values(0), points, None, 0))


def test_carry_forward_stays_within_a_period():
    beats = [0.0, 5.0, 10.0, 60.0]
    rows: list[tuple[float, tuple[Any, ...]]] = [(0.0, (1,)), (10.0, (2,))]
    assert carry_forward(beats, rows, 60) == [(1,), (1,), (2,), None]


def test_the_last_hour_shows_every_sample_with_unchanged_values_filled_in(cluster):
    times = [NOW - timedelta(seconds=300 - 5 * i) for i in range(60)]
    feed(cluster, times, lambda at: 3)
    history = get_history("c", "queue", Q, "1h", now=NOW.timestamp())
    assert history.range.tier.name == "raw"
    assert history.step == 5.0
    assert len(history.times) == 60
    assert set(history.series["depth"]) == {3}
    assert set(history.series["publish_rate"]) == {1.5}
    assert history.as_json()["resolution"] == "raw"


def test_a_collector_outage_is_a_null_point_not_a_line(cluster):
    before = [NOW - timedelta(seconds=600 - 5 * i) for i in range(10)]
    after = [NOW - timedelta(seconds=300 - 5 * i) for i in range(10)]
    feed(cluster, before + after, lambda at: 1 if at < NOW - timedelta(seconds=400) else 2)
    history = get_history("c", "queue", Q, "1h", now=NOW.timestamp())
    depth = history.series["depth"]
    assert depth == [1] * 10 + [None] + [2] * 10
    gap_time = history.times[10]
    assert history.times[9] < gap_time < history.times[11]


def test_a_queue_that_did_not_exist_yet_is_unknown_not_zero(cluster):
    times = [NOW - timedelta(seconds=100 - 5 * i) for i in range(20)]
    feed(cluster, times, lambda at: None if at < NOW - timedelta(seconds=50) else 4)
    depth = get_history("c", "queue", Q, "1h", now=NOW.timestamp()).series["depth"]
    assert depth[:10] == [None] * 10 and depth[-1] == 4


def test_the_cluster_itself_reads_its_heartbeats(cluster):
    feed(cluster, [NOW - timedelta(seconds=10), NOW - timedelta(seconds=5)], lambda at: 1)
    history = get_history("c", "cluster", "c", "1h", now=NOW.timestamp())
    assert history.series["depth"] == [0, 0]


def test_unknown_clusters_and_ranges_are_refused(cluster):
    from dashboard.metrics.history import UnknownCluster

    with pytest.raises(UnknownCluster):
        get_history("nope", "queue", Q, "1h")
    with pytest.raises(KeyError):
        get_history("c", "queue", Q, "2h")


def _bulk_insert(cluster_id: int, rows: list[tuple[Any, ...]]) -> None:
    with connection.cursor() as cursor:
        cursor.executemany(
            "INSERT INTO dashboard_throughputsample (cluster_id, entity_type, entity, resolution,"
            " time, depth, ready, unacked, publish_rate, deliver_rate, ack_rate, consumers, lag,"
            " lag_seconds) VALUES (%s, %s, %s, %s, %s, %s, NULL, NULL, %s, NULL, NULL, NULL, NULL,"
            " NULL)",
            rows,
        )


def test_it_stays_fast_with_months_of_samples(cluster, django_assert_max_num_queries):
    """Six months of hourly rows for 40 queues and three days of minutes for 10:
    each range still reads only its own rows, through the index."""
    rows = []
    start = NOW - timedelta(days=180)
    hours = int((NOW - start).total_seconds() // 3600)
    for h in range(hours):
        at = (start + timedelta(hours=h)).isoformat(sep=" ")
        rows.append((cluster.pk, "cluster", "c", "hour", at, h, 1.0))
        for q in range(40):
            rows.append((cluster.pk, "queue", f"%2F/q{q}", "hour", at, h + q, 1.0))
    for m in range(3 * 1440):
        at = (NOW - timedelta(minutes=3 * 1440 - m)).isoformat(sep=" ")
        rows.append((cluster.pk, "cluster", "c", "minute", at, m, 1.0))
        for q in range(10):
            rows.append((cluster.pk, "queue", f"%2F/q{q}", "minute", at, m + q, 1.0))
    _bulk_insert(cluster.pk, rows)
    assert len(rows) > 200_000
    for range_name, points in (("7d", 168), ("24h", 1440)):
        started = time.monotonic()
        with django_assert_max_num_queries(3):
            history = get_history("c", "queue", "%2F/q3", range_name, now=NOW.timestamp())
        elapsed = time.monotonic() - started
        assert points - 2 <= len(history.times) <= points + 1
        assert history.series["depth"][-1] is not None
        assert elapsed < 2.0, f"{range_name} took {elapsed:.2f} s"
