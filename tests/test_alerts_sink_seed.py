"""The demo's alert rules and sink channel: ``manage.py seed_alerts`` (``scripts/demo.sh
seed-alerts``) adds them once, on the demo's real names, as the named operator, audited;
a second run changes nothing; a viewer is refused and nothing is stored."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from dashboard.alerts.export import get_export
from dashboard.models import AlertChannel, AlertRule, AuditEntry

pytestmark = pytest.mark.django_db(transaction=True)


def seed(username: str, prefix: str = "demo-") -> str:
    out = io.StringIO()
    call_command(
        "seed_alerts",
        "--as", username,
        "--rabbitmq-cluster", "test-rabbitmq",
        "--kafka-cluster", "test-kafka",
        "--prefix", prefix,
        "--sink-secret-file", "/tmp/demo-sink-secret",
        "--dlq-threshold", "60",
        stdout=out,
    )  # fmt: skip
    return out.getvalue()


def test_it_adds_the_three_rules_and_the_sink_once(use_clusters, operator):
    first = seed(operator.username)
    assert first.count(": added") == 4
    channel = AlertChannel.objects.get(name="demo sink")
    assert (channel.kind, channel.url_env, channel.secret_file) == (
        "webhook", "MQB_DEMO_SINK_URL", "/tmp/demo-sink-secret",
    )  # fmt: skip
    rules = {
        r.kind: r for r in AlertRule.objects.select_related("cluster").prefetch_related("channels")
    }
    arrivals, lag, idle = rules["dlq_arrivals"], rules["group_lag_seconds"], rules["no_consumers"]
    assert arrivals.cluster is not None and lag.cluster is not None
    assert (arrivals.pattern, arrivals.cluster.slug) == ("demo-dlq", "test-rabbitmq")
    assert (arrivals.threshold, arrivals.window_seconds) == (60, 20)
    assert (lag.pattern, lag.cluster.slug) == ("demo-user-events-processor", "test-kafka")
    assert (idle.pattern, idle.for_seconds) == ("demo-task-queue", 5)
    assert all(r.syntax == "exact" and r.enabled for r in rules.values())
    assert all([c.name for c in r.channels.all()] == ["demo sink"] for r in rules.values())
    actions = sorted(AuditEntry.objects.values_list("action", flat=True))
    assert actions == [
        "alerts.channel_create", "alerts.rule_create", "alerts.rule_create",
        "alerts.rule_create", "alerts.rule_update",
    ]  # fmt: skip
    assert set(AuditEntry.objects.values_list("username", flat=True)) == {operator.username}

    again = seed(operator.username)
    assert again.count("already there") == 4 and "added" not in again
    assert AlertRule.objects.count() == 3 and AuditEntry.objects.count() == 5
    assert get_export().exported == 3, "every demo rule has a Prometheus counterpart"


def test_a_viewer_is_refused_and_nothing_is_stored(use_clusters, viewer):
    with pytest.raises(CommandError, match="not an operator"):
        seed(viewer.username)
    assert not AlertRule.objects.exists() and not AlertChannel.objects.exists()
