"""Alerts end to end: a real collector sampling real RabbitMQ queues, rules in its
database, and a real HTTP receiver. A depth rule fires after its ``for`` and resolves,
a silenced queue sends nothing, the webhook verifies, and a collector killed with
``kill -9`` while sending loses no notification."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from dashboard.alerts.channels import verify
from tests.settings import RUN_ID
from tests.support.alerts import Receiver, process_log, receiver
from tests.support.metrics import (
    base_env,
    clusters_file,
    collector_process,
    declare,
    mgmt,
    publish,
    run_django,
    unique,
    wait_for,
)

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq]
SECRET = "collector-test-secret"


def make_rule(env: dict[str, str], name: str, pattern: str, **extra: Any) -> None:
    fields = {
        "name": name,
        "kind": "queue_depth",
        "syntax": "exact",
        "pattern": pattern,
        "threshold": 5,
        "for_seconds": 2,
        **extra,
    }
    run_django(
        env,
        "import json; from dashboard.models import AlertChannel, AlertRule; "
        "c, _ = AlertChannel.objects.get_or_create(name='collector-test', defaults=dict("
        "url_env='MQB_TEST_HOOK_URL', secret_env='MQB_TEST_HOOK_SECRET')); "
        f"r = AlertRule.objects.create(**{fields!r}); r.channels.add(c); print(json.dumps(r.pk))",
    )


def silence(env: dict[str, str], entity_glob: str) -> None:
    run_django(
        env,
        "import json; from datetime import timedelta; from django.utils import timezone; "
        "from dashboard.models import Silence; now = timezone.now(); "
        f"Silence.objects.create(matchers={{'entity': {entity_glob!r}}}, "
        "starts_at=now, ends_at=now + timedelta(hours=1), reason='test'); print(1)",
    )


def outbox(env: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = run_django(
        env,
        "import json; from dashboard.models import AlertNotification as N; print(json.dumps("
        "list(N.objects.order_by('pk').values('notification_id', 'event', 'attempts',"
        " 'alert__entity', 'alert__started_at', 'alert__fired_at')), default=str))",
    )
    return rows


@pytest.fixture
def alerts_env(served_db, rabbitmq_vhost, tmp_path: Path) -> Iterator[dict[str, str]]:
    path = clusters_file(
        tmp_path,
        f"""
[[cluster]]
slug = "alerts-r-{RUN_ID}"
kind = "rabbitmq"
amqp_url = "amqp://127.0.0.1:5672/{quote(rabbitmq_vhost, safe="")}"
management_url = "http://127.0.0.1:15672"
username = "guest"
password_env = "ALERTS_RABBIT_PASSWORD"
timeout = 4
""",
    )
    env = base_env(
        served_db,
        MQB_CLUSTERS_FILE=path,
        ALERTS_RABBIT_PASSWORD="guest",
        MQB_METRICS_RABBITMQ_VHOSTS=rabbitmq_vhost,
        MQB_TEST_HOOK_SECRET=SECRET,
        MQB_ALERTS_SEND_POLL="0.2",
    )
    yield env
    run_django(
        env,
        "from dashboard.models import Alert, AlertChannel, AlertRule, Silence; "
        "AlertRule.objects.all().delete(); Alert.objects.all().delete(); "
        "AlertChannel.objects.all().delete(); Silence.objects.all().delete(); print(1)",
    )


def purge(vhost: str, name: str) -> None:
    with mgmt() as http:
        http.delete(
            f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}/contents"
        ).raise_for_status()


def events_of(sink: Receiver) -> list[tuple[str, str]]:
    with sink.lock:
        return [(a["event"], a["alert"]["entity"]) for r in sink.received for a in r.alerts()]


def test_a_depth_rule_fires_after_for_resolves_and_a_silenced_queue_sends_nothing(
    alerts_env, rabbitmq_vhost
):
    loud, quiet = unique("alert-loud"), unique("alert-quiet")
    for name in (loud, quiet):
        declare(rabbitmq_vhost, name)
        make_rule(alerts_env, f"deep {name}", name)
    silence(alerts_env, f"*{quiet}")
    with receiver() as sink:
        env = {**alerts_env, "MQB_TEST_HOOK_URL": sink.url}
        with collector_process(env, "--only", "metrics", "--interval", "1") as process:
            publish(rabbitmq_vhost, loud, 10)
            publish(rabbitmq_vhost, quiet, 10)
            try:
                [firing] = sink.wait_count(1, timeout=40)
                purge(rabbitmq_vhost, loud)
                purge(rabbitmq_vhost, quiet)
                received = sink.wait_count(2, timeout=40)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; log:\n{process_log(process)}") from None
            time.sleep(3)  # a few more samples: nothing else may arrive
        received = list(sink.received)
    loud_entity = f"{quote(rabbitmq_vhost, safe='')}/{loud}"
    assert [(a["event"], a["alert"]["entity"]) for r in received for a in r.alerts()] == [
        ("firing", loud_entity),
        ("resolved", loud_entity),
    ], "the silenced queue sent nothing, the loud one fired once and resolved once"
    headers = firing.headers
    assert verify(
        SECRET, headers["X-Mqboard-Timestamp"], firing.body, headers["X-Mqboard-Signature"]
    )
    rows = outbox(alerts_env)
    assert [r["notification_id"] for r in rows] == [
        r.headers["X-Mqboard-Notification-Id"] for r in received
    ]
    alert = firing.alerts()[0]["alert"]
    held = datetime.fromisoformat(alert["fired_at"]) - datetime.fromisoformat(alert["started_at"])
    assert held.total_seconds() >= 2, "it fired only after the condition held for 2 s"


def test_a_collector_killed_mid_send_loses_no_notification(alerts_env, rabbitmq_vhost):
    name = unique("alert-kill")
    declare(rabbitmq_vhost, name)
    make_rule(alerts_env, f"deep {name}", name, for_seconds=0)
    publish(rabbitmq_vhost, name, 10)
    with receiver() as sink:
        env = {
            **alerts_env,
            "MQB_TEST_HOOK_URL": sink.url,
            "MQB_ALERTS_SEND_LEASE": "3",
            "MQB_ALERTS_SEND_TIMEOUT": "60",
        }
        sink.hang.set()
        with collector_process(env, "--only", "metrics", "--interval", "1") as first:
            wait_for(lambda: sink.attempts >= 1, timeout=40, what="the first send to start")
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        sink.hang.clear()  # the held request is refused: the receiver never got it
        assert sink.received == []
        with collector_process(env, "--only", "metrics", "--interval", "1") as second:
            try:
                [got] = sink.wait_count(1, timeout=40)
            except AssertionError as exc:
                raise AssertionError(f"{exc}; log:\n{process_log(second)}") from None
    [row] = outbox(alerts_env)
    assert got.headers["X-Mqboard-Notification-Id"] == row["notification_id"]
    assert got.alerts()[0]["event"] == "firing" and row["attempts"] == 2
    assert events_of(sink) == [("firing", f"{quote(rabbitmq_vhost, safe='')}/{name}")]
