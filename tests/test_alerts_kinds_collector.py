"""New alert kinds end to end: a real collector (metrics and health loops) sampling real
RabbitMQ queues, rules in its database, and a real HTTP receiver. Messages ready and
nothing delivered fires and resolves once the queue is emptied; depth growth over a
window fires when messages arrive and resolves once the depth stops growing; the
stored health check carries each node's resource alarms, and node and alarm rules
raise nothing on a healthy broker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.settings import RUN_ID
from tests.support.alerts import Received, process_log, receiver
from tests.support.metrics import (
    base_env,
    clusters_file,
    collector_process,
    declare,
    mgmt,
    publish,
    run_django,
    unique,
)

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq]


def make_rule(env: dict[str, str], **fields: Any) -> None:
    run_django(
        env,
        "import json; from dashboard.models import AlertChannel, AlertRule; "
        "c, _ = AlertChannel.objects.get_or_create(name='kinds-collector-test', defaults=dict("
        "url_env='MQB_TEST_HOOK_URL')); "
        f"r = AlertRule.objects.create(**{fields!r}); r.channels.add(c); print(json.dumps(r.pk))",
    )


@pytest.fixture
def kinds_env(served_db, rabbitmq_vhost, tmp_path: Path) -> Iterator[dict[str, str]]:
    slug = f"kinds-r-{RUN_ID}"
    path = clusters_file(
        tmp_path,
        f"""
[[cluster]]
slug = "{slug}"
kind = "rabbitmq"
amqp_url = "amqp://127.0.0.1:5672/{quote(rabbitmq_vhost, safe="")}"
management_url = "http://127.0.0.1:15672"
username = "guest"
password_env = "KINDS_RABBIT_PASSWORD"
timeout = 4
""",
    )
    env = base_env(
        served_db,
        MQB_CLUSTERS_FILE=path,
        KINDS_RABBIT_PASSWORD="guest",
        MQB_METRICS_RABBITMQ_VHOSTS=rabbitmq_vhost,
        MQB_ALERTS_SEND_POLL="0.2",
        KINDS_SLUG=slug,
    )
    yield env
    run_django(
        env,
        "from dashboard.models import Alert, AlertChannel, AlertRule; "
        "AlertRule.objects.all().delete(); Alert.objects.all().delete(); "
        "AlertChannel.objects.all().delete(); print(1)",
    )


def sampled_for(env: dict[str, str], seconds: float, process: Any) -> None:
    """Wait until the collector has stored samples of the cluster spanning ``seconds``:
    each sample's alert rules are evaluated right after it is stored, before the next."""
    code = (
        "import json; from django.db.models import Max, Min; "
        "from dashboard.models import ThroughputSample; "
        f"r = ThroughputSample.objects.filter(cluster__slug={env['KINDS_SLUG']!r}, "
        "entity_type='cluster', resolution='raw').aggregate(a=Min('time'), b=Max('time')); "
        "print(json.dumps((r['b'] - r['a']).total_seconds() if r['a'] else -1))"
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if run_django(env, code) >= seconds:
            return
        time.sleep(0.5)
    raise AssertionError(f"no {seconds} s of samples; log:\n{process_log(process)}")


def purge(vhost: str, name: str) -> None:
    with mgmt() as http:
        http.delete(
            f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}/contents"
        ).raise_for_status()


def events(received: list[Received]) -> list[tuple[str, str, str]]:
    return [
        (a["alert"]["kind"], a["event"], a["alert"]["entity"]) for r in received for a in r.alerts()
    ]


def wait_events(sink: Any, want: list[tuple[str, str, str]], process: Any) -> None:
    # Generous: the deliver rate comes from the management API, slow when the machine is busy.
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with sink.lock:
            got = events(list(sink.received))
        if all(item in got for item in want):
            return
        time.sleep(0.2)
    raise AssertionError(f"wanted {want}, received {got}; log:\n{process_log(process)}")


def test_not_delivering_and_depth_growth_fire_and_resolve_on_real_queues(kinds_env, rabbitmq_vhost):
    stuck, growing = unique("alert-stuck"), unique("alert-growing")
    for name in (stuck, growing):
        declare(rabbitmq_vhost, name)
    make_rule(
        kinds_env,
        name="stuck",
        kind="not_delivering",
        syntax="exact",
        pattern=stuck,
        for_seconds=2,
    )
    make_rule(
        kinds_env,
        name="growing",
        kind="depth_growth",
        syntax="exact",
        pattern=growing,
        threshold=5,
        window_seconds=3,
    )
    make_rule(kinds_env, name="nodes", kind="node_down")
    make_rule(kinds_env, name="alarms", kind="broker_alarm")
    vhost = quote(rabbitmq_vhost, safe="")
    stuck_entity, growing_entity = f"{vhost}/{stuck}", f"{vhost}/{growing}"
    with receiver() as sink:
        env = {**kinds_env, "MQB_TEST_HOOK_URL": sink.url}
        args = ("--only", "metrics", "--only", "health", "--interval", "1")
        with collector_process(env, *args) as process:
            # A window of evaluated samples at depth 0 first: the rule compares depths
            # of the samples it evaluated, so a collector slow to start (a busy machine)
            # must not see the messages first.
            sampled_for(kinds_env, 5, process)
            publish(rabbitmq_vhost, stuck, 10)
            publish(rabbitmq_vhost, growing, 10)
            wait_events(
                sink,
                [
                    ("not_delivering", "firing", stuck_entity),
                    ("depth_growth", "firing", growing_entity),
                    ("depth_growth", "resolved", growing_entity),
                ],
                process,
            )
            purge(rabbitmq_vhost, stuck)
            wait_events(sink, [("not_delivering", "resolved", stuck_entity)], process)
        with sink.lock:
            got = events(list(sink.received))
    assert sorted(got) == sorted(
        [
            ("not_delivering", "firing", stuck_entity),
            ("not_delivering", "resolved", stuck_entity),
            ("depth_growth", "firing", growing_entity),
            ("depth_growth", "resolved", growing_entity),
        ]
    ), "each fired once and resolved once; a healthy broker raised no node or alarm alert"
    nodes = run_django(
        kinds_env,
        "import json; from dashboard.models import Cluster; "
        f"print(json.dumps(Cluster.objects.get(slug={kinds_env['KINDS_SLUG']!r})"
        ".overview['nodes']))",
    )
    assert nodes and all(n["running"] and n["alarms"] == [] for n in nodes), nodes
