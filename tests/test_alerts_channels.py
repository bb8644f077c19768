"""Channel health against a real local HTTP receiver: failures in a row, the last error
without the URL or its token, back to ok after a delivery; the channels page and the
API show it to viewers."""

from __future__ import annotations

import html
from typing import Any

import pytest
from django.utils import timezone

from dashboard.alerts.delivery import send_due
from dashboard.alerts.engine import evaluate
from dashboard.models import AlertChannel, AlertNotification, AlertRule, Cluster
from tests.support.alerts import queue_sample, receiver

pytestmark = pytest.mark.django_db(transaction=True)
TOKEN = "tok-secret-123"


@pytest.fixture
def cluster() -> Cluster:
    return Cluster.objects.create(slug="alerts-chan", kind="rabbitmq", name="Channels")


def fire(cluster: Cluster, *channels: AlertChannel, queues: tuple[str, ...] = ("orders",)) -> None:
    rule, _ = AlertRule.objects.get_or_create(
        name="deep", kind=AlertRule.Kind.QUEUE_DEPTH, pattern="orders*", threshold=10
    )
    rule.channels.add(*channels)
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, dict.fromkeys(queues, 50)))


def make_due() -> None:
    AlertNotification.objects.update(next_attempt_at=timezone.now())


def channel_json(client, name: str) -> dict[str, Any]:
    response = client.get("/api/alerts/channels")
    assert response.status_code == 200
    found: list[dict[str, Any]] = [c for c in response.json()["channels"] if c["name"] == name]
    assert len(found) == 1
    return found[0]


def test_a_channel_that_keeps_failing_is_failing_until_a_message_goes(
    cluster, monkeypatch, client, viewer
):
    client.force_login(viewer)
    with receiver() as sink:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", f"{sink.url}?token={TOKEN}")
        channel = AlertChannel.objects.create(name="hook", url_env="MQB_TEST_HOOK_URL")
        assert channel_json(client, "hook")["state"] == "never_used"
        sink.fail = 2
        fire(cluster, channel)
        assert send_due() == 0
        make_due()
        assert send_due() == 0
        channel.refresh_from_db()
        assert channel.consecutive_failures == 2 and channel.last_failure_at is not None
        assert channel.last_success_at is None
        assert channel.last_error == "the receiver answered 503"
        got = channel_json(client, "hook")
        assert got["state"] == "failing" and got["consecutive_failures"] == 2
        assert got["pending"] == 1 and got["last_error"] == "the receiver answered 503"
        page = client.get("/alerts/channels/")
        assert page.status_code == 200
        text = html.unescape(page.content.decode())
        assert f'data-channel="{channel.pk}" data-state="failing"' in text
        assert "the receiver answered 503" in text and TOKEN not in text
        make_due()
        assert send_due() == 1
        sink.wait_count(1)
    after = AlertChannel.objects.get(pk=channel.pk)
    assert after.consecutive_failures == 0 and after.last_success_at is not None
    assert after.last_error == "the receiver answered 503", "the last error is kept"
    got = channel_json(client, "hook")
    assert got["state"] == "ok" and got["pending"] == 0 and got["last_success_at"]


def test_a_refused_connection_fails_the_channel_without_its_url_or_token(
    cluster, monkeypatch, client, viewer
):
    monkeypatch.setenv("MQB_TEST_HOOK_URL", f"http://127.0.0.1:9/hook?token={TOKEN}")
    fire(cluster, AlertChannel.objects.create(name="gone", url_env="MQB_TEST_HOOK_URL"))
    assert send_due() == 0
    client.force_login(viewer)
    got = channel_json(client, "gone")
    assert got["state"] == "failing" and got["last_error"].startswith("not delivered")
    response = client.get("/api/alerts/channels")
    assert TOKEN not in response.text and "127.0.0.1:9" not in response.text
    page = client.get("/alerts/channels/")
    assert TOKEN not in page.content.decode() and "MQB_TEST_HOOK_URL" not in page.content.decode()


def test_an_unparsable_url_is_given_up_without_stopping_the_sender(cluster, monkeypatch):
    monkeypatch.setenv("MQB_TEST_HOOK_URL", f"http://[::1/hook?token={TOKEN}")
    channel = AlertChannel.objects.create(name="bad", url_env="MQB_TEST_HOOK_URL")
    fire(cluster, channel)
    assert send_due() == 0
    row = AlertNotification.objects.get()
    assert row.gave_up_at is not None and row.last_error == "the URL cannot be parsed"
    channel.refresh_from_db()
    assert channel.consecutive_failures == 1 and TOKEN not in channel.last_error


def test_an_unset_variable_is_named_and_one_group_counts_one_failure(cluster, client, viewer):
    channel = AlertChannel.objects.create(name="unset", url_env="MQB_TEST_UNSET_URL")
    fire(cluster, channel, queues=("orders-a", "orders-b"))
    assert AlertNotification.objects.count() == 2
    assert send_due() == 0
    channel.refresh_from_db()
    assert channel.consecutive_failures == 1, "two notifications, one message, one failure"
    assert channel.last_error == "no URL: MQB_TEST_UNSET_URL is not set"


def test_viewers_read_the_channels_page_from_the_alerts_sub_nav(client, viewer):
    AlertChannel.objects.create(name="never", kind="teams", url_env="MQB_TEST_UNSET_URL")
    client.force_login(viewer)
    alerts = client.get("/alerts/")
    assert 'href="/alerts/channels/"' in alerts.content.decode()
    page = client.get("/alerts/channels/")
    text = page.content.decode()
    assert page.status_code == 200 and "Never used" in text and "Microsoft Teams" in text
    assert client.post("/alerts/channels/").status_code == 405
