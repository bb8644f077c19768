"""The outbox sender against a real local HTTP receiver: signed webhooks, Slack and Teams
bodies, retries with backoff until the receiver recovers, stable ids, and secrets that
come only from the environment or a file."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.alerts.channels import verify
from dashboard.alerts.delivery import backoff, send_due
from dashboard.alerts.engine import evaluate
from dashboard.models import AlertChannel, AlertNotification, AlertRule, Cluster
from tests.support.alerts import queue_sample, receiver

pytestmark = pytest.mark.django_db(transaction=True)
SECRET = "s3cret-for-tests"


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(slug="alerts-send", kind="rabbitmq", name="Send")


def fire(cluster: Cluster, *channels: AlertChannel) -> None:
    rule = AlertRule.objects.create(
        name="deep", kind=AlertRule.Kind.QUEUE_DEPTH, pattern="orders", threshold=10
    )
    rule.channels.add(*channels)
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders": 50}))


def make_due() -> None:
    AlertNotification.objects.update(next_attempt_at=timezone.now())


def test_a_signed_webhook_verifies_and_carries_its_stable_id(cluster, monkeypatch, tmp_path):
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    with receiver() as sink:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", sink.url)
        channel = AlertChannel.objects.create(
            name="hook", url_env="MQB_TEST_HOOK_URL", secret_file=str(secret_file)
        )
        fire(cluster, channel)
        assert send_due() == 1
        [got] = sink.wait_count(1)
    row = AlertNotification.objects.get()
    assert row.sent_at is not None and row.attempts == 1
    assert got.headers["X-Mqboard-Notification-Id"] == row.notification_id
    assert got.json()["id"] == row.notification_id
    [alert] = got.alerts()
    assert alert["alert"]["entity"] == "%2F/orders" and got.json()["status"] == "firing"
    timestamp, signature = got.headers["X-Mqboard-Timestamp"], got.headers["X-Mqboard-Signature"]
    assert verify(SECRET, timestamp, got.body, signature)
    assert not verify(SECRET, timestamp, got.body.replace(b"50", b"51"), signature)
    assert not verify("another", timestamp, got.body, signature)
    assert SECRET not in json.dumps(row.payload) and sink.url not in json.dumps(row.payload)


def test_slack_and_teams_get_their_own_bodies(cluster, monkeypatch):
    with receiver() as sink:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", sink.url)
        slack = AlertChannel.objects.create(name="slack", kind="slack", url_env="MQB_TEST_HOOK_URL")
        teams = AlertChannel.objects.create(name="teams", kind="teams", url_env="MQB_TEST_HOOK_URL")
        fire(cluster, slack, teams)
        assert send_due() == 2
        got = [r.json() for r in sink.wait_count(2)]
    by_kind = {("slack" if "blocks" in body else "teams"): body for body in got}
    assert by_kind["slack"]["text"].startswith("[FIRING] deep: %2F/orders on alerts-send")
    assert by_kind["teams"]["@type"] == "MessageCard"
    assert {"name": "entity", "value": "%2F/orders"} in by_kind["teams"]["sections"][0]["facts"]


def test_a_failing_receiver_gets_retries_with_backoff_then_the_notification_once(
    cluster, monkeypatch
):
    with receiver() as sink:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", sink.url)
        sink.fail = 2
        fire(cluster, AlertChannel.objects.create(name="hook", url_env="MQB_TEST_HOOK_URL"))
        assert send_due() == 0
        row = AlertNotification.objects.get()
        assert row.sent_at is None and row.attempts == 1 and "503" in row.last_error
        assert row.next_attempt_at > timezone.now(), "not due again at once"
        assert send_due() == 0, "nothing is due during the backoff"
        make_due()
        assert send_due() == 0
        make_due()
        assert send_due() == 1
        assert send_due() == 0, "a sent notification is not sent again"
        assert len(sink.wait_count(1)) == 1 and sink.attempts == 3
    sent = AlertNotification.objects.get()
    assert sent.attempts == 3 and sent.last_error == "" and sent.sent_at is not None
    assert [backoff(n) for n in (1, 2, 3)] == [2.0, 4.0, 8.0]


def test_a_refused_connection_is_retried_without_leaking_the_url(cluster, monkeypatch):
    monkeypatch.setenv("MQB_TEST_HOOK_URL", "http://127.0.0.1:9/hook?token=tok-123")
    fire(cluster, AlertChannel.objects.create(name="hook", url_env="MQB_TEST_HOOK_URL"))
    assert send_due() == 0
    row = AlertNotification.objects.get()
    assert row.gave_up_at is None and row.last_error.startswith("not delivered")
    assert "tok-123" not in row.last_error


def test_a_channel_without_its_variable_is_retried_and_names_only_the_variable(cluster):
    fire(cluster, AlertChannel.objects.create(name="hook", url_env="MQB_TEST_UNSET_URL"))
    assert send_due() == 0
    assert AlertNotification.objects.get().last_error == "no URL: MQB_TEST_UNSET_URL is not set"


def test_a_sender_that_died_mid_send_leaves_the_row_to_the_next_one(cluster, monkeypatch):
    with receiver() as sink:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", sink.url)
        fire(cluster, AlertChannel.objects.create(name="hook", url_env="MQB_TEST_HOOK_URL"))
        # A claim that never settled: the row is held until its lease ends.
        AlertNotification.objects.update(
            claimed_until=timezone.now() + timedelta(seconds=30), attempts=1
        )
        assert send_due() == 0
        AlertNotification.objects.update(claimed_until=timezone.now() - timedelta(seconds=1))
        assert send_due() == 1
        [got] = sink.wait_count(1)
    row = AlertNotification.objects.get()
    assert got.headers["X-Mqboard-Notification-Id"] == row.notification_id and row.attempts == 2


def test_two_senders_at_once_send_each_notification_once(cluster, monkeypatch):
    with receiver() as sink:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", sink.url)
        channels = [
            AlertChannel.objects.create(name=f"hook{i}", url_env="MQB_TEST_HOOK_URL")
            for i in range(5)
        ]
        fire(cluster, *channels)
        sent: list[int] = []
        threads = [threading.Thread(target=lambda: sent.append(send_due())) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        assert sum(sent) == 5
        ids = [r.headers["X-Mqboard-Notification-Id"] for r in sink.wait_count(5)]
    assert sorted(ids) == sorted(
        AlertNotification.objects.values_list("notification_id", flat=True)
    )
