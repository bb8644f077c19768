"""Raw samples: a row per change (plus one a minute), heartbeats, and deleted entities."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from brokers.base.metrics import NO_VALUES, ClusterSample, Point
from dashboard.metrics.store import SampleWriter
from dashboard.models import Cluster, ThroughputSample

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 10, 0, 1, tzinfo=UTC)


def values(depth: int, rate: float = 0.0) -> tuple[Any, ...]:
    return (depth, depth, 0, rate, rate, rate, 1, None, None)


def sample(at: datetime, **queues: int) -> ClusterSample:
    return ClusterSample(
        slug="c",
        kind="rabbitmq",
        time=at,
        totals=values(sum(queues.values())),
        points=tuple(
            Point("queue", f"%2F/{name}", values(depth)) for name, depth in queues.items()
        ),
        consumers=None,
        seconds=0.1,
    )


@pytest.fixture
def writer():
    cluster = Cluster.objects.create(slug="c", kind="rabbitmq", name="c")
    return SampleWriter(cluster.pk, "c")


def rows(entity_type: str = "queue") -> list[tuple[Any, ...]]:
    return list(
        ThroughputSample.objects.filter(entity_type=entity_type)
        .order_by("time", "entity")
        .values_list("entity", "time", "depth")
    )


def test_it_writes_a_heartbeat_every_sample_and_entities_only_on_change(writer):
    for i in range(4):
        writer.write(sample(T0 + timedelta(seconds=5 * i), a=3, b=i))
    assert len(rows("cluster")) == 4
    a_rows = [r for r in rows() if r[0] == "%2F/a"]
    b_rows = [r for r in rows() if r[0] == "%2F/b"]
    assert len(a_rows) == 1, "an unchanged queue is written once"
    assert [r[2] for r in b_rows] == [0, 1, 2, 3]


def test_it_writes_every_entity_again_in_each_new_minute(writer):
    writer.write(sample(T0, a=3))
    writer.write(sample(T0 + timedelta(seconds=30), a=3))
    writer.write(sample(T0 + timedelta(seconds=60), a=3))
    assert [r[1] for r in rows()] == [T0, T0 + timedelta(seconds=60)]


def test_a_queue_that_disappears_gets_one_row_of_nulls(writer):
    writer.write(sample(T0, a=3, b=1))
    writer.write(sample(T0 + timedelta(seconds=5), a=3))
    writer.write(sample(T0 + timedelta(seconds=10), a=3))
    gone = ThroughputSample.objects.filter(entity="%2F/b").order_by("time")
    assert [r.depth for r in gone] == [1, None]
    last = gone.last()
    assert last is not None
    assert (
        tuple(getattr(last, f) for f in ("depth", "ready", "publish_rate", "lag")) == NO_VALUES[:4]
    )


def test_after_a_failed_write_it_writes_everything_again(writer):
    writer.write(sample(T0, a=3))
    writer.forget()
    writer.write(sample(T0 + timedelta(seconds=5), a=3))
    assert len(rows()) == 2


def test_names_too_long_for_the_column_are_skipped(writer):
    writer.write(sample(T0, **{"x" * 600: 1, "ok": 2}))
    assert [r[0] for r in rows()] == ["%2F/ok"]
