"""The read-only alerts API: rules with their channels (never their secrets), alerts by state."""

from __future__ import annotations

import pytest
from django.utils import timezone

from dashboard.alerts.engine import evaluate
from dashboard.models import AlertChannel, AlertRule, Cluster
from tests.support.alerts import queue_sample

pytestmark = pytest.mark.django_db


@pytest.fixture
def fired() -> Cluster:
    cluster = Cluster.objects.create(slug="alerts-api", kind="rabbitmq", name="API")
    channel = AlertChannel.objects.create(
        name="ops", kind="slack", url_env="MQB_SECRET_SLACK_URL", secret_file="/run/secret"
    )
    rule = AlertRule.objects.create(
        name="deep", kind=AlertRule.Kind.QUEUE_DEPTH, pattern="orders", threshold=10
    )
    rule.channels.add(channel)
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {"orders": 50}), timezone.now())
    return cluster


def test_it_lists_rules_to_viewers_without_channel_secrets(client, viewer, fired):
    client.force_login(viewer)
    response = client.get("/api/alerts/rules")
    assert response.status_code == 200
    [rule] = response.json()["rules"]
    assert rule["name"] == "deep" and rule["cluster"] is None and rule["threshold"] == 10
    assert rule["channels"] == [{"name": "ops", "kind": "slack"}]
    assert "MQB_SECRET_SLACK_URL" not in response.text and "/run/secret" not in response.text


def test_it_lists_alerts_by_state(client, viewer, fired):
    client.force_login(viewer)
    [alert] = client.get("/api/alerts", {"state": "active"}).json()["alerts"]
    assert (alert["state"], alert["entity"], alert["cluster"]) == (
        "firing",
        "%2F/orders",
        fired.slug,
    )
    assert alert["value"] == 50 and alert["resolved_at"] is None
    assert client.get("/api/alerts", {"state": "resolved"}).json()["alerts"] == []
    assert client.get("/api/alerts", {"state": "bogus"}).status_code == 400


def test_it_needs_a_login(client):
    assert client.get("/api/alerts").status_code == 401
    assert client.get("/api/alerts/rules").status_code == 401
