"""The alert engine's state machine on hand-made samples: ``for``, hysteresis, one alert
per fingerprint, repeats, silences, resolve notifications, and what ends alerts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from brokers.base.metrics import ClusterSample, Point, values_of
from dashboard.alerts.engine import evaluate, fingerprint
from dashboard.alerts.rules import get_rulebook, validate_pattern
from dashboard.core.params import InvalidInput
from dashboard.models import (
    Alert,
    AlertChannel,
    AlertNotification,
    AlertRule,
    Cluster,
    DeadLetter,
    Silence,
)
from tests.support.alerts import queue_sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(slug="alerts-rabbit", kind="rabbitmq", name="Alerts")


@pytest.fixture
def channel() -> AlertChannel:
    return AlertChannel.objects.create(name="ops", url_env="MQB_TEST_HOOK_URL")


def depth_rule(channel: AlertChannel, **fields: object) -> AlertRule:
    values: dict[str, object] = {
        "name": "deep orders",
        "kind": AlertRule.Kind.QUEUE_DEPTH,
        "syntax": "glob",
        "pattern": "orders*",
        "comparison": "gt",
        "threshold": 100,
        "for_seconds": 30,
    }
    values.update(fields)
    rule = AlertRule.objects.create(**values)
    rule.channels.add(channel)
    return rule


def events() -> list[tuple[str, str]]:
    return list(AlertNotification.objects.order_by("pk").values_list("event", "alert__entity"))


def test_it_fires_only_after_for_and_resolves_with_hysteresis(cluster, channel):
    depth_rule(channel, resolve_threshold=80)
    t0 = timezone.now()
    entity = "%2F/orders.eu"

    def at(seconds: float, depth: int) -> None:
        sample = queue_sample(cluster.slug, {"orders.eu": depth, "payments": 10_000})
        evaluate(cluster.pk, cluster.slug, sample, t0 + timedelta(seconds=seconds))

    at(0, 150)
    alert = Alert.objects.get()
    assert (alert.state, alert.entity) == ("pending", entity), "payments does not match orders*"
    at(20, 160)
    assert Alert.objects.get().state == "pending" and events() == []
    at(31, 170)
    assert Alert.objects.get().state == "firing"
    assert events() == [("firing", entity)]
    at(40, 90)
    assert Alert.objects.get().state == "firing", "90 is under 100 but above the resolve 80"
    at(50, 70)
    alert = Alert.objects.get()
    assert alert.state == "resolved" and alert.value == 70
    assert events() == [("firing", entity), ("resolved", entity)]
    payload = AlertNotification.objects.order_by("pk").reverse()[0].payload
    assert payload["status"] == "resolved" and payload["alert"]["cluster"] == cluster.slug


def test_a_condition_that_stops_before_for_never_fires(cluster, channel):
    depth_rule(channel)
    t0 = timezone.now()
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders": 500}), t0)
    later = t0 + timedelta(seconds=10)
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders": 5}), later)
    assert not Alert.objects.exists() and events() == []


def test_one_alert_per_fingerprint_repeated_at_its_interval(cluster, channel):
    rule = depth_rule(channel, for_seconds=0, repeat_seconds=60)
    t0 = timezone.now()
    for seconds in (0, 10, 20, 59, 61, 100):
        sample = queue_sample(cluster.slug, {"orders": 500})
        evaluate(cluster.pk, cluster.slug, sample, t0 + timedelta(seconds=seconds))
    alert = Alert.objects.get()
    assert alert.fingerprint == fingerprint(rule.pk, cluster.pk, "%2F/orders")
    assert [e for e, _ in events()] == ["firing", "repeat"]


def test_a_silence_suppresses_firing_and_it_is_sent_once_the_silence_ends(cluster, channel):
    depth_rule(channel, for_seconds=0)
    t0 = timezone.now()
    Silence.objects.create(
        matchers={"rule": "deep *", "entity": "*orders"},
        starts_at=t0 - timedelta(seconds=1),
        ends_at=t0 + timedelta(seconds=30),
        reason="maintenance",
    )
    sample = queue_sample(cluster.slug, {"orders": 500})
    evaluate(cluster.pk, cluster.slug, sample, t0)
    assert Alert.objects.get().state == "firing" and events() == []
    evaluate(cluster.pk, cluster.slug, sample, t0 + timedelta(seconds=31))
    assert events() == [("firing", "%2F/orders")], "notified once nothing silences it"


def test_a_silenced_alert_that_resolves_sends_nothing(cluster, channel):
    depth_rule(channel, for_seconds=0)
    t0 = timezone.now()
    Silence.objects.create(
        matchers={"cluster": cluster.slug},
        starts_at=t0,
        ends_at=t0 + timedelta(hours=1),
        reason="known",
    )
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders": 500}), t0)
    later = t0 + timedelta(seconds=5)
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders": 0}), later)
    assert Alert.objects.get().state == "resolved" and events() == []


def test_a_deleted_queue_resolves_and_an_unknown_value_changes_nothing(cluster, channel):
    depth_rule(channel, for_seconds=0)
    t0 = timezone.now()
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders": 500}), t0)
    unknown = queue_sample(cluster.slug, {"orders": None})
    evaluate(cluster.pk, cluster.slug, unknown, t0 + timedelta(seconds=5))
    assert Alert.objects.get().state == "firing"
    evaluate(cluster.pk, cluster.slug, None, t0 + timedelta(seconds=10))
    assert Alert.objects.get().state == "firing", "a failed sample leaves depth alerts alone"
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {}), t0 + timedelta(seconds=15))
    assert Alert.objects.get().state == "resolved"
    assert [e for e, _ in events()] == ["firing", "resolved"]


def test_cluster_unavailable_fires_on_failed_samples_and_resolves_on_a_good_one(cluster, channel):
    rule = AlertRule.objects.create(
        name="cluster down", kind=AlertRule.Kind.CLUSTER_UNAVAILABLE, for_seconds=20
    )
    rule.channels.add(channel)
    t0 = timezone.now()
    evaluate(cluster.pk, cluster.slug, None, t0)
    evaluate(cluster.pk, cluster.slug, None, t0 + timedelta(seconds=21))
    assert Alert.objects.get().state == "firing"
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {}), t0 + timedelta(seconds=30))
    assert Alert.objects.get().state == "resolved"
    assert events() == [("firing", cluster.slug), ("resolved", cluster.slug)]


def test_no_consumers_uses_exact_names_and_ignores_the_threshold(cluster, channel):
    rule = AlertRule.objects.create(
        name="nobody", kind=AlertRule.Kind.NO_CONSUMERS, syntax="exact", pattern="tasks"
    )
    rule.channels.add(channel)
    t0 = timezone.now()
    sample = queue_sample(cluster.slug, {"tasks": 0, "tasks2": 0}, consumers=0)
    evaluate(cluster.pk, cluster.slug, sample, t0)
    assert list(Alert.objects.values_list("entity", "state")) == [("%2F/tasks", "firing")]


def test_a_disabled_rule_ends_its_alerts_quietly(cluster, channel):
    rule = depth_rule(channel, for_seconds=0)
    t0 = timezone.now()
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders": 500}), t0)
    AlertRule.objects.filter(pk=rule.pk).update(enabled=False)
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders": 500}), t0)
    assert Alert.objects.get().state == "resolved"
    assert [e for e, _ in events()] == ["firing"]


def test_rules_of_another_cluster_and_bounded_regexes(cluster, channel):
    other = Cluster.objects.create(slug="alerts-other", kind="rabbitmq", name="Other")
    depth_rule(channel, cluster=other, for_seconds=0)
    depth_rule(channel, name="regex", syntax="regex", pattern=r"^pay\w+$", for_seconds=0)
    sample = queue_sample(cluster.slug, {"orders": 500, "payments": 500})
    evaluate(cluster.pk, cluster.slug, sample, timezone.now())
    assert list(Alert.objects.values_list("rule_name", "entity")) == [("regex", "%2F/payments")]
    with pytest.raises(InvalidInput):
        validate_pattern("regex", "(a")
    with pytest.raises(InvalidInput):
        validate_pattern("regex", r"(a)\1")


def test_a_thousand_rules_over_ten_thousand_queues_compile_once(cluster, channel):
    AlertRule.objects.bulk_create(
        AlertRule(
            name=f"r{i}",
            kind=AlertRule.Kind.QUEUE_DEPTH,
            syntax="glob",
            pattern=f"svc{i}.*",
            threshold=1_000_000,
        )
        for i in range(1000)
    )
    book = get_rulebook()
    assert get_rulebook() is book, "unchanged rules are not compiled again"
    sample = queue_sample(cluster.slug, {f"svc{i % 1000}.q{i}": i for i in range(10_000)})
    outcome = evaluate(cluster.pk, cluster.slug, sample, timezone.now())
    assert outcome.started == 0 and not Alert.objects.exists()
    assert len(book.matching("queue_depth", "svc7.q7", cluster.pk)) == 1


def letter(cluster: Cluster, dlq: str, n: int, age_seconds: float, vhost: str = "") -> DeadLetter:
    row = DeadLetter.objects.create(
        cluster=cluster, vhost=vhost, dlq=dlq, capture_key=f"{vhost}{dlq}-{n}"
    )
    captured = timezone.now() - timedelta(seconds=age_seconds)
    DeadLetter.objects.filter(pk=row.pk).update(captured_at=captured)
    return row


def test_dead_letters_pending_and_the_age_of_the_oldest_per_dlq(cluster, channel):
    for kind, threshold in ((AlertRule.Kind.DLQ_PENDING, 2), (AlertRule.Kind.DLQ_OLDEST_AGE, 600)):
        rule = AlertRule.objects.create(
            name=kind, kind=kind, pattern="*.dlq", threshold=threshold, for_seconds=0
        )
        rule.channels.add(channel)
    letter(cluster, "orders.dlq", 1, 30)
    letter(cluster, "orders.dlq", 2, 20)
    letter(cluster, "orders.dlq", 3, 10)
    old = letter(cluster, "billing.dlq", 1, 3600)
    letter(cluster, "other", 1, 3600)
    # A RabbitMQ DLQ of the same name in two vhosts: two entities, as its queues are.
    for n in (1, 2, 3):
        letter(cluster, "orders.dlq", n, 10, vhost="eu/prod")
    letter(cluster, "orders.dlq", 1, 10, vhost="us")
    sample = queue_sample(cluster.slug, {})
    evaluate(cluster.pk, cluster.slug, sample, timezone.now())
    firing = set(Alert.objects.filter(state="firing").values_list("kind", "entity"))
    assert firing == {
        ("dlq_pending", "orders.dlq"),
        ("dlq_pending", "eu%2Fprod/orders.dlq"),
        ("dlq_oldest_age", "billing.dlq"),
    }
    DeadLetter.objects.filter(pk=old.pk).update(status=DeadLetter.Status.REQUEUED)
    evaluate(cluster.pk, cluster.slug, sample, timezone.now())
    resolved = Alert.objects.get(kind="dlq_oldest_age")
    assert resolved.state == "resolved", "no pending letter left in billing.dlq"


def test_group_lag_in_messages_and_seconds(cluster, channel):
    for kind, threshold in (
        (AlertRule.Kind.GROUP_LAG, 1000),
        (AlertRule.Kind.GROUP_LAG_SECONDS, 60),
    ):
        rule = AlertRule.objects.create(name=kind, kind=kind, threshold=threshold, for_seconds=0)
        rule.channels.add(channel)
    sample = ClusterSample(
        slug=cluster.slug,
        kind="kafka",
        time=timezone.now(),
        totals=values_of(),
        points=(
            Point("group", "billing", values_of(lag=5000, lag_seconds=5.0)),
            Point("group", "emails", values_of(lag=10, lag_seconds=300.0)),
            Point("group", "unknown", values_of(lag=None, lag_seconds=None)),
            Point("topic", "billing", values_of(depth=10**9)),
        ),
        consumers=None,
        seconds=0.1,
    )
    evaluate(cluster.pk, cluster.slug, sample, timezone.now())
    firing = set(Alert.objects.values_list("kind", "entity", "state"))
    assert firing == {
        ("group_lag", "billing", "firing"),
        ("group_lag_seconds", "emails", "firing"),
    }
