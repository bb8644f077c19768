"""Grouping end to end: a real collector samples three real RabbitMQ queues one rule
matches, waits the group wait, and sends one message; killed with ``kill -9`` while
sending it, the next collector sends the same three notifications, with the same ids,
in one message."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from dashboard.alerts.channels import message_id
from tests.settings import RUN_ID
from tests.support.alerts import process_log, receiver
from tests.support.metrics import (
    base_env,
    clusters_file,
    collector_process,
    declare,
    publish,
    run_django,
    unique,
    wait_for,
    wait_for_ready,
)

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq]


def outbox(env: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = run_django(
        env,
        "import json; from dashboard.models import AlertNotification as N; print(json.dumps("
        "list(N.objects.order_by('pk').values('notification_id', 'attempts', 'group_key',"
        " 'sent_at')), default=str))",
    )
    return rows


@pytest.fixture
def group_env(served_db, rabbitmq_vhost, tmp_path: Path) -> Iterator[dict[str, str]]:
    path = clusters_file(
        tmp_path,
        f"""
[[cluster]]
slug = "alerts-g-{RUN_ID}"
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
        MQB_ALERTS_SEND_POLL="0.2",
        MQB_ALERTS_GROUP_WAIT="1",
        MQB_ALERTS_GROUP_INTERVAL="60",
        MQB_ALERTS_SEND_LEASE="3",
        MQB_ALERTS_SEND_TIMEOUT="60",
    )
    yield env
    run_django(
        env,
        "from dashboard.models import Alert, AlertChannel, AlertRule; "
        "AlertRule.objects.all().delete(); Alert.objects.all().delete(); "
        "AlertChannel.objects.all().delete(); print(1)",
    )


def test_a_collector_killed_mid_send_of_a_group_loses_none_of_it(group_env, rabbitmq_vhost):
    prefix = unique("alert-group")
    names = [f"{prefix}-{i}" for i in range(3)]
    for name in names:
        declare(rabbitmq_vhost, name)
        publish(rabbitmq_vhost, name, 10)
    for name in names:
        wait_for_ready(rabbitmq_vhost, name, 10)
    run_django(
        group_env,
        "from dashboard.models import AlertChannel, AlertRule; "
        "c = AlertChannel.objects.create(name='group-test', url_env='MQB_TEST_HOOK_URL'); "
        "r = AlertRule.objects.create(name='deep group', kind='queue_depth', syntax='glob', "
        f"pattern={prefix + '-*'!r}, threshold=5); r.channels.add(c); print(1)",
    )
    with receiver() as sink:
        env = {**group_env, "MQB_TEST_HOOK_URL": sink.url}
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
    rows = outbox(group_env)
    ids = [r["notification_id"] for r in rows]
    assert len(ids) == 3 and len({r["group_key"] for r in rows}) == 1
    assert [r["attempts"] for r in rows] == [2, 2, 2]
    assert got.json()["notification_ids"] == ids
    assert sorted(a["alert"]["entity"] for a in got.alerts()) == [
        f"{quote(rabbitmq_vhost, safe='')}/{name}" for name in names
    ]
    assert got.headers["X-Mqboard-Notification-Id"] == message_id(ids)
    assert sink.ids() == [message_id(ids)], "one message, once"
