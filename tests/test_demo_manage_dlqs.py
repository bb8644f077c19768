"""The demo manages its own DLQs at start: ``manage.py manage_dlqs`` and ``scripts/demo.sh``.

The command runs in-process against this run's vhost and unique Kafka topics.
The last test is `make demo`'s dead-letter path end to end, with real
processes on a database file of its own: the demo workload fills both
brokers' DLQs, ``scripts/demo.sh manage-dlqs`` (the step `make demo` runs)
takes them over as ``demo-admin``, a real ``manage.py collect --only capture``
captures them, and the inbox shows both brokers' letters, grouped.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from django.core.management import CommandError, call_command

from dashboard.models import AuditEntry, ManagedDeadLetterQueue
from tests.conftest import KAFKA, PYTHON, ROOT, python_env, stop_process
from tests.support import deadletters as h

pytestmark = [pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.django_db(transaction=True)]


def manage_dlqs(*args: str) -> str:
    out = io.StringIO()
    call_command("manage_dlqs", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def rabbit_dlq(use_clusters, rabbitmq_vhost) -> str:
    _events, _work, dlq = asyncio.run(h.dead_letter_topology(rabbitmq_vhost, h.unique("demo")))
    return dlq


@pytest.fixture
def kafka_dlq(use_clusters) -> Iterator[str]:
    name = h.create_topic(h.kafka_name("-dlq"))
    yield name
    h.delete_topics(name)


def test_it_manages_named_dlqs_as_the_admin_with_an_audit_entry(
    admin_user_, rabbit_dlq, kafka_dlq, rabbitmq_vhost
):
    who = ("--as", admin_user_.username)
    out = manage_dlqs(rabbit_dlq, "--cluster", "test-rabbitmq", "--vhost", rabbitmq_vhost, *who)
    assert out.strip() == f"test-rabbitmq:{rabbitmq_vhost}/{rabbit_dlq}: managed"
    assert manage_dlqs(kafka_dlq, "--cluster", "test-kafka", *who).strip().endswith("managed")

    rows = {m.name: m for m in ManagedDeadLetterQueue.objects.all()}
    assert rows[rabbit_dlq].active and rows[rabbit_dlq].vhost == rabbitmq_vhost
    assert rows[kafka_dlq].active and rows[kafka_dlq].managed_by == admin_user_
    audits = AuditEntry.objects.filter(action="deadletters.manage", outcome="ok")
    assert {a.target for a in audits} == {
        f"queue {rabbit_dlq!r} in vhost {rabbitmq_vhost!r}",
        f"topic {kafka_dlq!r}",
    }
    assert {a.username for a in audits} == {admin_user_.username}

    again = manage_dlqs(kafka_dlq, "--cluster", "test-kafka", *who)
    assert again.strip().endswith("already managed")


def test_it_refuses_users_below_admin_and_unknown_users(operator, rabbit_dlq, rabbitmq_vhost):
    where = (rabbit_dlq, "--cluster", "test-rabbitmq", "--vhost", rabbitmq_vhost)
    with pytest.raises(CommandError, match="needs the admin role"):
        manage_dlqs(*where, "--as", operator.username)
    refused = AuditEntry.objects.get(action="deadletters.manage")
    assert (refused.outcome, refused.username) == ("refused", operator.username)
    with pytest.raises(CommandError, match="no user 'nobody-here'"):
        manage_dlqs(*where, "--as", "nobody-here")
    assert not ManagedDeadLetterQueue.objects.exists()


def test_it_waits_for_a_dlq_declared_later_and_says_why_one_never_came(admin_user_, use_clusters):
    name = h.kafka_name("-dlq")
    later = threading.Timer(1.5, h.create_topic, [name])
    later.start()
    try:
        out = manage_dlqs(
            name, "--cluster", "test-kafka", "--as", admin_user_.username, "--wait", "30"
        )
        assert out.strip() == f"test-kafka:{name}: managed"
    finally:
        later.join()
        h.delete_topics(name)
    with pytest.raises(CommandError, match="not a dead-letter queue"):
        manage_dlqs(h.kafka_name("-dlq"), "--cluster", "test-kafka", "--as", admin_user_.username)
    # Waiting is not audited: one entry for each attempt, not one per retry.
    assert AuditEntry.objects.filter(action="deadletters.manage").count() == 2


def test_all_discovered_takes_every_dlq_of_the_vhost(admin_user_, rabbit_dlq, rabbitmq_vhost):
    out = manage_dlqs(
        "--all-discovered", "--cluster", "test-rabbitmq", "--vhost", rabbitmq_vhost,
        "--as", admin_user_.username,
    )  # fmt: skip
    assert f"{rabbit_dlq}: managed" in out
    assert ManagedDeadLetterQueue.objects.filter(name=rabbit_dlq, active=True).exists()
    with pytest.raises(CommandError, match="not both"):
        manage_dlqs(rabbit_dlq, "--all-discovered", "--cluster", "test-rabbitmq", "--as", "x")


# -- make demo, end to end ----------------------------------------------------------

INBOX = """
import json
import django
django.setup()
from dashboard.models import AuditEntry
from dashboard.deadletters.inbox import InboxFilter, get_inbox_groups
groups = [
    {k: g[k] for k in ("cluster", "origin", "reason", "exception_class", "count")}
    for g in get_inbox_groups(InboxFilter(), 1)
]
audits = AuditEntry.objects.filter(action="deadletters.manage")
audits = list(audits.values_list("username", "target"))
print(json.dumps({"groups": groups, "audits": audits}))
"""


def captured_by_kind(db: Path) -> dict[str, int]:
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
        try:
            rows = conn.execute(
                "SELECT c.kind, count(*) FROM dashboard_deadletter d"
                " JOIN dashboard_cluster c ON c.id = d.cluster_id GROUP BY c.kind"
            ).fetchall()
        except sqlite3.OperationalError:  # locked by the collector's write: not yet
            return {}
    return dict(rows)


@pytest.fixture
def demo_env(tmp_path: Path, rabbitmq_vhost: str, unique_name: str) -> Iterator[dict[str, str]]:
    prefix = f"{unique_name}-"
    clusters = tmp_path / "clusters.toml"
    clusters.write_text(
        '[[cluster]]\nslug = "local-rabbitmq"\nkind = "rabbitmq"\nname = "RabbitMQ"\n'
        f'amqp_url = "amqp://127.0.0.1:5672/{quote(rabbitmq_vhost, safe="")}"\n'
        'management_url = "http://127.0.0.1:15672"\nusername = "guest"\n'
        'password_env = "MQB_TEST_DEMO_PASSWORD"\n'
        f'[[cluster]]\nslug = "local-kafka"\nkind = "kafka"\nname = "Kafka"\n'
        f'bootstrap_servers = "{KAFKA}"\n'
    )
    env = python_env(
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        MQB_STATE_DIR=str(tmp_path / "state"),
        MQB_CLUSTERS_FILE=str(clusters),
        MQB_TEST_DEMO_PASSWORD="guest",
        MQB_KAFKA_CAPTURE_GROUP=f"{prefix}capture-{{slug}}",
        DEMO_PREFIX=prefix,
        DEMO_AMQP_URL=f"amqp://guest:guest@127.0.0.1:5672/{quote(rabbitmq_vhost, safe='')}",
    )
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    yield env
    h.delete_group(f"{prefix}capture-local-kafka")
    h.delete_group(f"{prefix}user-events-processor")
    with contextlib.suppress(Exception):  # never created: the test failed early
        h.delete_topics(f"{prefix}user-events", f"{prefix}user-events-dlq")


def test_the_demos_dead_letters_from_both_brokers_fill_one_inbox(demo_env, tmp_path):
    prefix = demo_env["DEMO_PREFIX"]
    logs = tmp_path / "logs"
    logs.mkdir()
    workload = subprocess.Popen(
        [PYTHON, "-m", "demo.workload", "--rate", "30", "--fail-share", "0.3", "--no-celery"],
        cwd=ROOT, env=demo_env,
        stdout=(logs / "workload.log").open("wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    collector = None
    try:
        step = subprocess.run(
            ["scripts/demo.sh", "manage-dlqs"], cwd=ROOT, env=demo_env,
            capture_output=True, text=True, timeout=150,
        )  # fmt: skip
        assert step.returncode == 0, step.stdout + step.stderr
        assert f"/{prefix}dlq: managed" in step.stdout
        assert f"local-kafka:{prefix}user-events-dlq: managed" in step.stdout

        collector = subprocess.Popen(
            [PYTHON, "manage.py", "collect", "--only", "capture", "--interval", "1"],
            cwd=ROOT, env=demo_env,
            stdout=(logs / "collector.log").open("wb"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        db = Path(demo_env["DATABASE_URL"].removeprefix("sqlite:///"))
        h.wait_for(
            lambda: {"rabbitmq", "kafka"} <= {k for k, n in captured_by_kind(db).items() if n},
            60,
            what="dead letters captured from both brokers",
        )
    finally:
        for process in (collector, workload):
            if process is not None:
                stop_process(process)

    seen = subprocess.run(
        [PYTHON, "-c", INBOX], cwd=ROOT, env=demo_env, capture_output=True, text=True, check=True
    )
    inbox = json.loads(seen.stdout.strip().splitlines()[-1])
    clusters = {g["cluster"] for g in inbox["groups"]}
    assert clusters == {"local-rabbitmq", "local-kafka"}, inbox["groups"]
    kafka_groups = [g for g in inbox["groups"] if g["cluster"] == "local-kafka"]
    assert {g["origin"] for g in kafka_groups} == {f"topic {prefix}user-events"}, kafka_groups
    # Grouped by failure: each Kafka group is one exception the demo consumer threw.
    assert all(g["exception_class"] for g in kafka_groups), kafka_groups
    assert len(kafka_groups) < sum(g["count"] for g in kafka_groups)
    rabbit_groups = [g for g in inbox["groups"] if g["cluster"] == "local-rabbitmq"]
    assert {g["reason"] for g in rabbit_groups} == {"rejected"}, rabbit_groups
    assert {user for user, _target in inbox["audits"]} == {"demo-admin"}
    assert len(inbox["audits"]) == 2
