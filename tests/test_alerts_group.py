"""Grouping against a real local HTTP receiver: the notifications of one rule on one
cluster to one channel go as one message after the group wait, later changes wait for
the group interval, each alert keeps its own id in the body and the message has its own
stable id."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from dashboard.alerts.channels import message_id, verify
from dashboard.alerts.delivery import send_due
from dashboard.alerts.engine import evaluate, group_key
from dashboard.models import AlertChannel, AlertNotification, AlertRule, Cluster
from tests.support.alerts import queue_sample, receiver

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "group-secret"
WAIT, INTERVAL = 30.0, 120.0


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(slug="alerts-group", kind="rabbitmq", name="Group")


@pytest.fixture
def grouping(settings) -> None:
    settings.MQB_ALERTS_GROUP_WAIT = WAIT
    settings.MQB_ALERTS_GROUP_INTERVAL = INTERVAL


def deep_rule(*channels: AlertChannel, name: str = "deep") -> AlertRule:
    rule = AlertRule.objects.create(
        name=name, kind=AlertRule.Kind.QUEUE_DEPTH, pattern="orders-*", threshold=10
    )
    rule.channels.add(*channels)
    return rule


def pass_time(seconds: float) -> None:
    """What waiting does to the outbox: every unsent row is due that much sooner."""
    AlertNotification.objects.filter(sent_at__isnull=True).update(
        next_attempt_at=F("next_attempt_at") - timedelta(seconds=seconds)
    )


def test_three_alerts_of_one_rule_go_as_one_message_and_a_resolve_as_one_more(
    cluster, grouping, monkeypatch
):
    monkeypatch.setenv("MQB_TEST_HOOK_SECRET", SECRET)
    with receiver() as sink:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", sink.url)
        channel = AlertChannel.objects.create(
            name="hook", url_env="MQB_TEST_HOOK_URL", secret_env="MQB_TEST_HOOK_SECRET"
        )
        rule = deep_rule(channel)
        start = timezone.now()
        evaluate(
            cluster.pk,
            cluster.slug,
            queue_sample(cluster.slug, {"orders-a": 50, "orders-b": 60}),
            start,
        )
        evaluate(
            cluster.pk,
            cluster.slug,
            queue_sample(cluster.slug, {"orders-a": 50, "orders-b": 60, "orders-c": 70}),
            start + timedelta(seconds=5),
        )
        rows = list(AlertNotification.objects.order_by("pk"))
        assert len(rows) == 3
        assert {r.group_key for r in rows} == {group_key(rule.pk, cluster.pk)}
        assert {r.next_attempt_at for r in rows} == {start + timedelta(seconds=WAIT)}, (
            "the third alert, five seconds later, joins the first two"
        )
        assert send_due() == 0, "the group waits"
        assert sink.attempts == 0
        pass_time(WAIT)
        assert send_due() == 3
        [first] = sink.wait_count(1)
        ids = [r.notification_id for r in rows]
        body = first.json()
        assert body["notification_ids"] == ids
        assert [a["id"] for a in body["firing"]] == ids and body["resolved"] == []
        assert sorted(a["alert"]["entity"] for a in body["firing"]) == [
            "%2F/orders-a",
            "%2F/orders-b",
            "%2F/orders-c",
        ]
        assert body["status"] == "firing" and body["group"]["rule"] == "deep"
        assert first.headers["X-Mqboard-Notification-Id"] == body["id"] == message_id(ids)
        assert body["id"] not in ids
        assert verify(
            SECRET,
            first.headers["X-Mqboard-Timestamp"],
            first.body,
            first.headers["X-Mqboard-Signature"],
        )

        later = timezone.now()
        evaluate(
            cluster.pk,
            cluster.slug,
            queue_sample(cluster.slug, {"orders-a": 0, "orders-b": 60, "orders-c": 70}),
            later,
        )
        resolved = AlertNotification.objects.get(sent_at__isnull=True)
        sent_at = AlertNotification.objects.filter(sent_at__isnull=False)[0].sent_at
        assert sent_at is not None
        assert resolved.next_attempt_at == sent_at + timedelta(seconds=INTERVAL), (
            "a change of a group just notified waits for the group interval"
        )
        assert send_due() == 0
        pass_time(INTERVAL)
        assert send_due() == 1
        received = sink.wait_count(2)
        assert len(received) == 2 and sink.attempts == 2
    second = received[1].json()
    assert second["firing"] == [] and [a["id"] for a in second["resolved"]] == [
        resolved.notification_id
    ]
    assert second["status"] == "resolved"
    assert second["resolved"][0]["alert"]["entity"] == "%2F/orders-a"
    assert received[1].headers["X-Mqboard-Notification-Id"] == resolved.notification_id


def test_groups_are_per_rule_and_per_channel(cluster, monkeypatch):
    with receiver() as sink:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", sink.url)
        one = AlertChannel.objects.create(name="one", url_env="MQB_TEST_HOOK_URL")
        two = AlertChannel.objects.create(name="two", kind="slack", url_env="MQB_TEST_HOOK_URL")
        deep_rule(one, two, name="deep")
        deep_rule(one, name="deep too")
        evaluate(
            cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders-a": 50, "orders-b": 60})
        )
        assert AlertNotification.objects.count() == 6
        assert send_due() == 6
        received = sink.wait_count(3)
    webhooks = sorted(
        (r.json()["group"]["rule"], len(r.alerts())) for r in received if "firing" in r.json()
    )
    assert webhooks == [("deep", 2), ("deep too", 2)]
    [slack] = [r.json() for r in received if "blocks" in r.json()]
    text = slack["text"].splitlines()
    assert text[0] == "[FIRING 2] deep on alerts-group"
    assert text[1:] == [
        "[FIRING] deep: %2F/orders-a on alerts-group (value 50)",
        "[FIRING] deep: %2F/orders-b on alerts-group (value 60)",
    ]


def test_a_failed_group_is_retried_as_one_message_with_what_joined_it(cluster, monkeypatch):
    with receiver() as sink:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", sink.url)
        sink.fail = 1
        deep_rule(AlertChannel.objects.create(name="hook", url_env="MQB_TEST_HOOK_URL"))
        evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders-a": 50}))
        assert send_due() == 0
        failed = AlertNotification.objects.get()
        evaluate(
            cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders-a": 50, "orders-b": 60})
        )
        joined = AlertNotification.objects.exclude(pk=failed.pk).get()
        assert joined.next_attempt_at == failed.next_attempt_at, "it joins the retry"
        pass_time(3600)
        assert send_due() == 2
        [got] = sink.wait_count(1)
    assert got.json()["notification_ids"] == [failed.notification_id, joined.notification_id]
    assert sorted(AlertNotification.objects.values_list("attempts", flat=True)) == [1, 2]
