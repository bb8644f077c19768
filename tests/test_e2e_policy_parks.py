"""End to end: a retry policy retries a failing message until it parks it.

Real parts, each its own process or thread: RabbitMQ (a work queue whose
dead-letter exchange routes into a managed DLQ), a consumer that rejects
every message of the work queue (``requeue=False``), the collector
(``manage.py collect``) capturing the DLQ, a Celery worker running the
dispatcher, Redis (the worker's queue and the dispatcher's lease) and an
active rule: retry after 1 s (factor 1), at most 2 attempts. One message goes
in; it must come back twice and then stay parked, and nothing more is sent.
The loop guard (``MQB_DEADLETTER_POISON_AFTER``) is pinned at 3 in the processes'
environment, above the rule's 2 attempts, so the rule parks the letter before
the guard would flag it.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from asgiref.sync import async_to_sync

from tests.conftest import KAFKA, ROOT, stop_process
from tests.settings import RUN_ID
from tests.support import deadletters as h
from tests.support.dispatch import start_worker, wait_until, worker_database, worker_env
from tests.support.e2e import FailingKafka, Rejecting, publish, start_collector
from tests.support.letter_page import run_script
from tests.support.served_db import query

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.rabbitmq]

SETUP = """
import json, sys
import django
django.setup()
from django.contrib.auth.models import User
from dashboard.core.clusters import sync_cluster_rows
from django.contrib.auth.models import Group
from dashboard.deadletters.policies import rules
from dashboard.models import ManagedDeadLetterQueue
spec = json.loads(sys.stdin.read())
cluster = sync_cluster_rows()[spec["cluster"]]
ManagedDeadLetterQueue.objects.create(cluster=cluster, vhost=spec["vhost"], name=spec["dlq"])
admin = User.objects.create_user("e2e-admin", is_staff=True, is_superuser=True)
admin.groups.add(Group.objects.get_or_create(name="admin")[0])
policy = rules.do_create_policy(user=admin, data=rules.RuleInput(
    name="retry twice, then park", match_dlq=spec["dlq"], action="retry", max_attempts=2,
    delay_seconds=1.0, factor=1.0, cap_seconds=1.0, jitter=0.0, dry_run=False,
))
print(json.dumps(policy.pk))
"""

STATS = """
import dataclasses, json, sys
import django
django.setup()
from dashboard.deadletters.policies import rules
stats = rules.get_policy(json.loads(sys.stdin.read())).stats
print(json.dumps({k: v for k, v in dataclasses.asdict(stats).items() if k != "last_at"}))
"""

LETTERS = (
    "SELECT id, came_back, status, parked, poison, policy_id, failed_again_as_id, schedule_id"
    " FROM dashboard_deadletter WHERE dlq = %s ORDER BY id"
)
DECISIONS = (
    "SELECT d.dead_letter_id, d.action, d.attempt, d.dry_run, d.policy_id"
    " FROM dashboard_policydecision d JOIN dashboard_deadletter l ON l.id = d.dead_letter_id"
    " WHERE l.dlq = %s ORDER BY d.id"
)
GUARD = {"MQB_DEADLETTER_POISON_AFTER": "3"}  # comebacks that make a letter poison
QUIET = 4.0  # seconds after parking with nothing sent: four times the rule's delay


def logs(name: str) -> Path:
    return ROOT / "var" / "log" / f"test-e2e-{RUN_ID}-{name}-{uuid.uuid4().hex[:6]}.log"


def setup_db(env: dict[str, str], cluster: str, vhost: str, dlq: str) -> int:
    """Manage the DLQ and create the active rule (as an admin, audited); the rule's id."""
    return int(run_script(env, SETUP, {"cluster": cluster, "vhost": vhost, "dlq": dlq}))


def parked(db: str, dlq: str) -> bool:
    return any(row[3] for row in query(db, LETTERS, (dlq,)))


def assert_retried_twice_then_parked(
    env: dict[str, str],
    db: str,
    dlq: str,
    policy: int,
    seen: list[tuple[str, int | None]],
    key: str,
) -> None:
    letters = query(db, LETTERS, (dlq,))
    assert [row[1] for row in letters] == [0, 1, 2], letters  # came back 0, 1, 2 times
    assert [row[2] for row in letters] == ["failed_again", "failed_again", "pending"], letters
    assert [bool(row[3]) for row in letters] == [False, False, True], "only the last is parked"
    assert not any(row[4] for row in letters), "the loop guard did not flag it"
    assert {row[5] for row in letters} == {policy}, "the rule acted on each"
    ids = [row[0] for row in letters]
    assert [row[6] for row in letters] == [ids[1], ids[2], None], "the came-back chain"
    assert {row[7] for row in letters} == {None}, "sent by the rule, not a schedule"

    decisions = query(db, DECISIONS, (dlq,))
    assert [(d[0], d[1], d[2], bool(d[3]), d[4]) for d in decisions] == [
        (ids[0], "retry", 0, False, policy),
        (ids[1], "retry", 1, False, policy),
        (ids[2], "park", 2, False, policy),
    ]
    # The failing consumer got the message three times: first, then each retry (counted).
    assert seen == [(key, None), (key, 1), (key, 2)]

    stats = run_script(env, STATS, policy)
    assert stats == {
        "matched": 3, "retries": 2, "parked": 1, "poison": 0, "would_retry": 0, "would_park": 0,
        "sent": 2, "came_back": 2, "waiting": 0,
    }  # fmt: skip


def run_processes(env: dict[str, str], tmp_path: Path, name: str) -> list[Any]:
    worker = start_worker(env, f"mqb-e2e-{name}-{uuid.uuid4().hex[:6]}@%h", logs(f"{name}-worker"))
    collector = start_collector(env, logs(f"{name}-collector"))
    return [worker, collector]


def test_a_rule_retries_a_failing_rabbitmq_message_twice_and_then_parks_it(
    tmp_path, rabbitmq_vhost, redis_url
):
    base = h.unique("e2e-park")
    events, work, dlq = async_to_sync(h.dead_letter_topology)(rabbitmq_vhost, base)
    db = worker_database(tmp_path)
    env = worker_env(
        db,
        **GUARD,
        MQB_STATE_DIR=str(tmp_path),
        MQB_DEFAULT_CLUSTERS="rabbitmq",
        MQB_RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:5672/{quote(rabbitmq_vhost, safe='')}",
    )
    policy = setup_db(env, "local-rabbitmq", rabbitmq_vhost, dlq)
    message_id = f"order-{base}"
    processes = run_processes(env, tmp_path, "rabbit")
    try:
        with Rejecting(rabbitmq_vhost, work) as consumer:
            publish(rabbitmq_vhost, events, "order.1.created", message_id)
            wait_until(lambda: parked(db, dlq), 60, "the letter to be parked")
            time.sleep(QUIET)  # anything sent after parking would be back by now
            seen = list(consumer.seen)
    finally:
        for process in processes:
            stop_process(process)
    assert_retried_twice_then_parked(env, db, dlq, policy, seen, message_id)
    assert async_to_sync(h.depth)(rabbitmq_vhost, dlq) == 0, "the collector took every letter"


@pytest.mark.kafka
def test_a_rule_retries_a_failing_kafka_record_twice_and_then_parks_it(tmp_path, redis_url):
    origin = h.create_topic(h.kafka_name("-orders"))
    dlt = h.create_topic(h.kafka_name("-orders-dlt"))
    capture_group, listener_group = f"{dlt}-capture", f"{origin}-listener"
    db = worker_database(tmp_path)
    env = worker_env(
        db,
        **GUARD,
        MQB_STATE_DIR=str(tmp_path),
        MQB_DEFAULT_CLUSTERS="kafka",
        MQB_KAFKA_BOOTSTRAP_SERVERS=KAFKA,
        MQB_KAFKA_DLQ_TOPICS=dlt,
        MQB_KAFKA_CAPTURE_GROUP=capture_group,
    )
    policy = setup_db(env, "local-kafka", "", dlt)
    key = f"order-{uuid.uuid4().hex[:8]}"
    processes = run_processes(env, tmp_path, "kafka")
    try:
        with FailingKafka(origin, dlt, listener_group) as listener:
            h.produce(origin, [(key.encode(), b'{"order": 1}', [("x-tenant", b"acme")])])
            wait_until(lambda: parked(db, dlt), 90, "the letter to be parked")
            time.sleep(QUIET)  # anything sent after parking would be back by now
            seen = list(listener.seen)
    finally:
        for process in processes:
            stop_process(process)
        h.delete_group(capture_group)
        h.delete_group(listener_group)
        h.delete_topics(origin, dlt)
    assert_retried_twice_then_parked(env, db, dlt, policy, seen, key)
