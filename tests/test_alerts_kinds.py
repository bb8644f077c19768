"""The alert kinds beyond depth, consumers and lag, on hand-made samples and rows:
dead-letter arrivals and came-back ratio, depth growth, nothing delivered, time to
drain, empty groups, partitions, nodes down, resource alarms and failed jobs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from django.utils import timezone

from brokers.base.metrics import ClusterSample, Point, queue_entity, values_of
from dashboard.alerts import engine
from dashboard.alerts.engine import NEVER, evaluate
from dashboard.models import Alert, AlertChannel, AlertRule, Cluster, DeadLetter, Job

pytestmark = pytest.mark.django_db
Kind = AlertRule.Kind


@pytest.fixture(autouse=True)
def fresh_memory() -> Iterator[None]:
    engine.forget()
    yield
    engine.forget()


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(slug="kinds-rabbit", kind="rabbitmq", name="Kinds")


@pytest.fixture
def channel() -> AlertChannel:
    return AlertChannel.objects.create(name="kinds", url_env="MQB_TEST_HOOK_URL")


def rule(channel: AlertChannel, kind: str, **fields: Any) -> AlertRule:
    values: dict[str, Any] = {"name": f"{kind} rule", "kind": kind, "for_seconds": 0, **fields}
    made = AlertRule.objects.create(**values)
    made.channels.add(channel)
    return made


def sample(slug: str, *points: Point) -> ClusterSample:
    return ClusterSample(
        slug=slug,
        kind="rabbitmq",
        time=timezone.now(),
        totals=values_of(),
        points=points,
        consumers=None,
        seconds=0.01,
    )


def queue(name: str, **values: Any) -> Point:
    return Point("queue", queue_entity("/", name), values_of(**values))


def states(kind: str | None = None) -> dict[str, str]:
    rows = Alert.objects.all() if kind is None else Alert.objects.filter(kind=kind)
    return dict(rows.values_list("entity", "state"))


def letter(cluster: Cluster, dlq: str, n: int, ago: float, **fields: Any) -> None:
    row = DeadLetter.objects.create(cluster=cluster, dlq=dlq, capture_key=f"{dlq}-{n}")
    when = timezone.now() - timedelta(seconds=ago)
    DeadLetter.objects.filter(pk=row.pk).update(captured_at=when, **fields)


def test_dead_letter_arrivals_in_the_window(cluster, channel):
    rule(channel, Kind.DLQ_ARRIVALS, pattern="*.dlq", threshold=2, window_seconds=60)
    rule(
        channel, Kind.DLQ_ARRIVALS, name="hourly", pattern="*.dlq", threshold=3, window_seconds=3600
    )
    for n, ago in enumerate((5, 10, 20, 600)):
        letter(cluster, "orders.dlq", n, ago)
    letter(cluster, "billing.dlq", 1, 5)
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), timezone.now())
    fired = set(Alert.objects.values_list("rule_name", "entity", "value"))
    assert fired == {
        ("dlq_arrivals rule", "orders.dlq", 3.0),
        ("hourly", "orders.dlq", 4.0),
    }, "three arrivals in the last minute, four in the hour; billing had one"
    DeadLetter.objects.filter(dlq="orders.dlq").update(
        captured_at=timezone.now() - timedelta(seconds=120)
    )
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), timezone.now())
    assert dict(Alert.objects.values_list("rule_name", "state")) == {
        "dlq_arrivals rule": "resolved",
        "hourly": "firing",
    }, "nothing arrived in the last minute; four still did within the hour"


def test_came_back_ratio_of_requeues_in_the_window(cluster, channel):
    rule(channel, Kind.DLQ_CAME_BACK_RATIO, threshold=0.5, window_seconds=600)
    now = timezone.now()
    requeued, back = DeadLetter.Status.REQUEUED, DeadLetter.Status.FAILED_AGAIN
    for n, status in enumerate((back, back, back, requeued)):
        letter(cluster, "orders.dlq", n, 60, status=status, acted_at=now - timedelta(seconds=30))
    letter(cluster, "billing.dlq", 1, 60, status=back, acted_at=now - timedelta(seconds=30))
    letter(cluster, "billing.dlq", 2, 60, status=requeued, acted_at=now - timedelta(seconds=30))
    letter(cluster, "old.dlq", 1, 9000, status=back, acted_at=now - timedelta(seconds=5000))
    letter(cluster, "new.dlq", 1, 5)  # pending, never requeued
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now)
    assert list(Alert.objects.values_list("entity", "state", "value")) == [
        ("orders.dlq", "firing", 0.75)
    ], "billing came back 1 of 2 (not above 0.5); old.dlq was requeued outside the window"
    DeadLetter.objects.filter(dlq="orders.dlq").update(acted_at=now - timedelta(seconds=5000))
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now + timedelta(seconds=1))
    assert states() == {"orders.dlq": "resolved"}


def test_depth_growth_over_the_window(cluster, channel):
    rule(channel, Kind.DEPTH_GROWTH, pattern="orders*", threshold=100, window_seconds=60)
    t0 = timezone.now()

    def at(seconds: float, depth: int, other: int = 0) -> None:
        points = (queue("orders", depth=depth), queue("payments", depth=other))
        evaluate(
            cluster.pk, cluster.slug, sample(cluster.slug, *points), t0 + timedelta(seconds=seconds)
        )

    at(0, 10, other=0)
    at(30, 20, other=10_000)
    at(50, 500)
    assert not Alert.objects.exists(), "no value before the process has seen a whole window"
    at(60, 200)
    assert list(Alert.objects.values_list("entity", "state", "value")) == [
        ("%2F/orders", "firing", 190.0)
    ], "200 now against 10 sixty seconds ago; payments is not matched"
    at(95, 220)
    assert states() == {"%2F/orders": "firing"}, "220 against 20 (t=30) is still 200 more"
    at(125, 230)
    alert = Alert.objects.get()
    assert (alert.state, alert.value) == ("resolved", 30.0), "230 against 200 (t=60)"


def test_messages_ready_but_nothing_delivered_for_n_seconds(cluster, channel):
    rule(channel, Kind.NOT_DELIVERING, for_seconds=30)
    t0 = timezone.now()
    group = Point(
        "group",
        "billing",
        values_of(lag=50, deliver_rate=0.0, consumers=1),
        {"topics": ["invoices", "refunds"]},
    )
    busy = Point("group", "mailer", values_of(lag=5, deliver_rate=3.0), {"topics": ["emails"]})

    def at(seconds: float, rate: float | None) -> None:
        points = (
            queue("tasks", ready=5, deliver_rate=rate),
            queue("idle", ready=0, deliver_rate=0.0),
            group,
            busy,
            Point("topic", "invoices", values_of(depth=50)),
            Point("topic", "emails", values_of(depth=5)),
        )
        evaluate(
            cluster.pk, cluster.slug, sample(cluster.slug, *points), t0 + timedelta(seconds=seconds)
        )

    at(0, 0.0)
    at(31, 0.0)
    assert states() == {"%2F/tasks": "firing", "invoices": "firing"}
    at(40, None)
    assert states()["%2F/tasks"] == "firing", "an unknown rate changes nothing"
    at(50, 2.5)
    assert states() == {"%2F/tasks": "resolved", "invoices": "firing"}


def test_ready_messages_without_a_rate_or_a_consumer_are_not_delivering(cluster, channel):
    # RabbitMQ drops the counts of a channel that closed before its statistics were
    # collected: a queue filled by a short-lived publisher may report no rates at all.
    rule(channel, Kind.NOT_DELIVERING, for_seconds=30)
    t0 = timezone.now()

    def at(seconds: float) -> None:
        points = (
            queue("nobody", ready=5, deliver_rate=None, consumers=0),
            queue("consumed", ready=5, deliver_rate=None, consumers=1),
            queue("empty", ready=0, deliver_rate=None, consumers=0),
        )
        evaluate(
            cluster.pk, cluster.slug, sample(cluster.slug, *points), t0 + timedelta(seconds=seconds)
        )

    at(0)
    at(31)
    assert states() == {"%2F/nobody": "firing"}, (
        "no consumer to deliver to; with a consumer and no rate the value stays unknown"
    )


def test_time_to_drain_and_empty_groups(cluster, channel):
    rule(channel, Kind.GROUP_DRAIN_SECONDS, threshold=600)
    rule(channel, Kind.GROUP_EMPTY, threshold=99, comparison="gt")
    points = (
        Point("group", "fast", values_of(lag=1000, deliver_rate=10.0, consumers=2)),
        Point("group", "slow", values_of(lag=10_000, deliver_rate=2.0, consumers=1)),
        Point("group", "stopped", values_of(lag=10, deliver_rate=0.0, consumers=0)),
        Point("group", "done", values_of(lag=0, deliver_rate=None, consumers=0)),
        Point("group", "unknown", values_of(lag=None, deliver_rate=1.0, consumers=None)),
    )
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug, *points), timezone.now())
    drain = dict(Alert.objects.filter(kind=Kind.GROUP_DRAIN_SECONDS).values_list("entity", "value"))
    assert drain == {"slow": 5000.0, "stopped": NEVER}, "fast drains in 100 s, done has no lag"
    assert states(Kind.GROUP_EMPTY) == {"stopped": "firing", "done": "firing"}, (
        "group_empty fires at 0 members whatever the rule's threshold"
    )


def test_under_replicated_and_offline_partitions_per_topic(cluster, channel):
    rule(channel, Kind.PARTITIONS_UNDER_REPLICATED)
    rule(channel, Kind.PARTITIONS_OFFLINE)

    def topic(name: str, extra: dict[str, Any]) -> Point:
        return Point("topic", name, values_of(depth=1), extra)

    first = (
        topic("orders", {"rf": 3, "under_replicated": 2, "offline": 1}),
        topic("users", {"rf": 3, "under_replicated": 1}),
        topic("healthy", {"rf": 3}),
        topic("unread", {"partitions": 3}),
    )
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug, *first), timezone.now())
    assert set(Alert.objects.values_list("kind", "entity", "value")) == {
        (Kind.PARTITIONS_UNDER_REPLICATED, "orders", 2.0),
        (Kind.PARTITIONS_UNDER_REPLICATED, "users", 1.0),
        (Kind.PARTITIONS_OFFLINE, "orders", 1.0),
    }
    second = (topic("orders", {"rf": 3}), topic("users", {"partitions": 3}))
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug, *second), timezone.now())
    assert set(Alert.objects.values_list("kind", "entity", "state")) == {
        (Kind.PARTITIONS_UNDER_REPLICATED, "orders", "resolved"),
        (Kind.PARTITIONS_UNDER_REPLICATED, "users", "firing"),
        (Kind.PARTITIONS_OFFLINE, "orders", "resolved"),
    }, "a topic whose replicas were not read this time keeps its alert"


def store_check(cluster: Cluster, nodes: list[dict[str, Any]], at: datetime) -> None:
    Cluster.objects.filter(pk=cluster.pk).update(
        status=Cluster.Status.OK,
        last_checked_at=at,
        overview={"kind": "rabbitmq", "nodes": nodes, "checked_at": at.isoformat()},
    )


def test_nodes_down_from_the_stored_health_check(cluster, channel):
    rule(channel, Kind.NODE_DOWN, pattern="rabbit@*")
    now = timezone.now()
    up = [{"name": "rabbit@a", "running": True}, {"name": "rabbit@b", "running": True}]
    store_check(cluster, up, now)
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now)
    assert not Alert.objects.exists()
    store_check(cluster, [up[0], {"name": "rabbit@b", "running": False}], now)
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now + timedelta(seconds=1))
    assert states() == {"rabbit@b": "firing"}
    store_check(cluster, [up[1]], now)
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now + timedelta(seconds=2))
    assert states() == {"rabbit@b": "resolved", "rabbit@a": "firing"}, (
        "a node an earlier check showed and this one does not is down"
    )
    engine.forget()  # a restarted collector: the open alert remembers the node
    stale = now - timedelta(hours=1)
    store_check(cluster, up, stale)
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now + timedelta(seconds=3))
    assert states()["rabbit@a"] == "firing", "a stale check changes nothing"
    store_check(cluster, [up[1]], now)
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now + timedelta(seconds=4))
    assert states()["rabbit@a"] == "firing"
    store_check(cluster, up, now)
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now + timedelta(seconds=5))
    assert states() == {"rabbit@b": "resolved", "rabbit@a": "resolved"}


def test_rabbitmq_memory_and_disk_alarms(cluster, channel):
    rule(channel, Kind.BROKER_ALARM, for_seconds=10)
    now = timezone.now()
    nodes = [
        {"name": "rabbit@a", "running": True, "alarms": ["memory"]},
        {"name": "rabbit@b", "running": True, "alarms": ["memory", "disk"]},
        {"name": "rabbit@old", "running": True},
    ]
    store_check(cluster, nodes, now)
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now)
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now + timedelta(seconds=11))
    assert states() == {
        "rabbit@a/memory": "firing",
        "rabbit@b/memory": "firing",
        "rabbit@b/disk": "firing",
    }
    nodes[1]["alarms"] = ["disk"]
    store_check(cluster, nodes, now + timedelta(seconds=12))
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now + timedelta(seconds=12))
    assert states()["rabbit@b/memory"] == "resolved" and states()["rabbit@b/disk"] == "firing"


def test_a_failed_job_fires_until_its_failure_is_older_than_the_window(cluster, channel):
    rule(channel, Kind.JOB_FAILED, pattern="requeue", syntax="exact", window_seconds=600)
    now = timezone.now()
    failed = Job.objects.create(
        kind="requeue", cluster=cluster, state=Job.State.FAILED, finished_at=now
    )
    Job.objects.create(kind="requeue", cluster=cluster, state=Job.State.DONE, finished_at=now)
    Job.objects.create(kind="discard", cluster=cluster, state=Job.State.FAILED, finished_at=now)
    Job.objects.create(
        kind="requeue",
        cluster=cluster,
        state=Job.State.FAILED,
        finished_at=now - timedelta(hours=2),
    )
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now)
    assert states() == {f"requeue #{failed.pk}": "firing"}
    evaluate(cluster.pk, cluster.slug, sample(cluster.slug), now + timedelta(seconds=601))
    assert states() == {f"requeue #{failed.pk}": "resolved"}
