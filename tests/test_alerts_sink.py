"""The demo's alert sink as a real process: a real delivery through the outbox sender
reaches it signed and is accepted, a forged one is refused and shown as refused, a
retried one is a duplicate, and a hostile alert is escaped on its page."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.utils import timezone

from dashboard.alerts.channels import sign
from dashboard.alerts.delivery import send_due
from dashboard.alerts.engine import evaluate
from dashboard.models import AlertChannel, AlertNotification, AlertRule, Cluster
from tests.support.alerts import queue_sample

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent
SECRET = "sink-test-secret"
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def sink() -> Iterator[str]:
    """``scripts/alert_sink.py`` on a free port, with the shared secret; its base URL."""
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "alert_sink.py"), "--port", "0"],
        env={"MQB_DEMO_SINK_SECRET": SECRET, "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        assert "listening on http://127.0.0.1:" in line, line
        yield line.split("listening on ", 1)[1].strip().rstrip("/")
    finally:
        process.terminate()
        process.wait(timeout=10)


def received(base: str) -> list[dict[str, Any]]:
    answer = httpx.get(f"{base}/notifications.json", timeout=5)
    assert answer.status_code == 200
    items: list[dict[str, Any]] = answer.json()["notifications"]
    return items


def deliver(monkeypatch: pytest.MonkeyPatch, base: str, queue: str) -> AlertNotification:
    """A real alert on ``queue`` fired by the engine and sent by the outbox sender."""
    monkeypatch.setenv("MQB_TEST_SINK_URL", f"{base}/hook")
    monkeypatch.setenv("MQB_TEST_SINK_SECRET", SECRET)
    cluster = Cluster.objects.create(slug="sink-test", kind="rabbitmq", name="Sink")
    channel = AlertChannel.objects.create(
        name="demo sink", url_env="MQB_TEST_SINK_URL", secret_env="MQB_TEST_SINK_SECRET"
    )
    rule = AlertRule.objects.create(
        name=f"deep {HOSTILE}", kind=AlertRule.Kind.QUEUE_DEPTH, pattern="*", threshold=10
    )
    rule.channels.add(channel)
    evaluate(cluster.pk, cluster.slug, queue_sample(cluster.slug, {queue: 50}))
    assert send_due() == 1
    return AlertNotification.objects.get()


def test_a_real_delivery_is_accepted_and_a_forged_one_refused(sink, monkeypatch):
    row = deliver(monkeypatch, sink, "orders")
    [got] = received(sink)
    assert got["verdict"] == "accepted" and got["reason"] == ""
    assert got["notification_id"] == row.notification_id
    assert (got["event"], got["entity"], got["value"]) == ("firing", "%2F/orders", "50.0")

    body = json.dumps({"event": "firing", "alert": {"rule": "forged"}}).encode()
    stamp = str(int(time.time()))
    forged = {
        "X-Mqboard-Timestamp": stamp,
        "X-Mqboard-Signature": sign("not-the-secret", stamp, body),
        "X-Mqboard-Notification-Id": "forged-1",
    }
    answer = httpx.post(f"{sink}/hook", content=body, headers=forged, timeout=5)
    assert answer.status_code == 401
    unsigned = httpx.post(f"{sink}/hook", content=body, timeout=5)
    assert unsigned.status_code == 401
    old = str(int(time.time()) - 3600)
    stale = {**forged, "X-Mqboard-Timestamp": old, "X-Mqboard-Signature": sign(SECRET, old, body)}
    assert httpx.post(f"{sink}/hook", content=body, headers=stale, timeout=5).status_code == 401
    newest = received(sink)[:3]
    assert [(n["verdict"], n["reason"]) for n in newest] == [
        ("refused", "timestamp too old or too new"),
        ("refused", "not signed"),
        ("refused", "bad signature"),
    ]
    page = httpx.get(f"{sink}/", timeout=5).text
    assert page.count("<td>refused</td>") == 3 and page.count("<td>accepted</td>") == 1


def test_a_retried_notification_is_shown_as_a_duplicate(sink, monkeypatch):
    row = deliver(monkeypatch, sink, "orders")
    AlertNotification.objects.filter(pk=row.pk).update(sent_at=None, next_attempt_at=timezone.now())
    assert send_due() == 1
    verdicts = [(n["verdict"], n["notification_id"]) for n in received(sink)]
    assert verdicts == [("duplicate", row.notification_id), ("accepted", row.notification_id)]


def test_a_hostile_alert_is_escaped_on_the_page(sink, monkeypatch):
    deliver(monkeypatch, sink, HOSTILE)
    answer = httpx.get(f"{sink}/", timeout=5)
    assert answer.headers["Content-Security-Policy"].startswith("default-src 'none'")
    page = answer.text
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    [item] = received(sink)
    assert HOSTILE in item["rule"] and HOSTILE in item["entity"], "the JSON keeps the text"


def test_it_binds_to_the_loopback_only(sink):
    assert sink.startswith("http://127.0.0.1:")
    assert httpx.get(f"{sink}/nothing", timeout=5).status_code == 404
