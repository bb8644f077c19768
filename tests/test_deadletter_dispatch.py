"""Scheduled requeues carried out by a real worker: on time, in order, once, through restarts,
a ``kill -9``, a second worker, a pool full of paused bulk jobs and a broker that is down.

Real parts: Celery workers serving the jobs queue (each runs the dispatcher's
thread, as in production; one at a time holds the lease) on a database of their
own (of the kind MQB_TEST_DB names), Redis (the queue and the dispatcher's
lease), RabbitMQ in the test run's vhost and Kafka. Letters are seeded as
captured rows and scheduled with ``schedule.do_schedule_requeue``
(``tests.support.schedule_seed``); what reaches the origin is read there:
message ids at the RabbitMQ queue (with arrival times from a live consumer),
keys and broker timestamps on the topic.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
import redis

from tests.conftest import ROOT, stop_process
from tests.settings import RUN_ID
from tests.support.deadletters import create_topic, delete_topics
from tests.support.dispatch import (
    Arrivals,
    jobs_started,
    kafka_arrivals,
    schedule_state,
    seed,
    set_job_states,
    start_paused_jobs,
    start_worker,
    statuses,
    wait_until,
    worker_database,
    worker_env,
)
from tests.support.metrics import TcpProxy, declare
from tests.support.served_db import query

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.rabbitmq]

LEASE = 3.0  # seconds: a killed dispatcher's lease expires soon
SOON = 8.0  # a due letter is at its origin within this (liveness, not the benchmark)
LEASE_KEY = f"mqboard:mqb-test-{RUN_ID}:deadletters:dispatch"


def logs(name: str) -> Path:
    return ROOT / "var" / "log" / f"test-dispatch-{RUN_ID}-{name}-{uuid.uuid4().hex[:6]}.log"


def lease_holder(redis_url: str) -> object:
    client = redis.Redis.from_url(redis_url)
    try:
        return client.get(LEASE_KEY)
    finally:
        client.close()


def started(log: Path) -> int:
    return log.read_text(errors="replace").count("dispatcher: lease taken")


def audits(db: str, target: str) -> list[tuple[str, str, dict[str, int]]]:
    rows = query(
        db,
        "SELECT username, outcome, parameters FROM dashboard_auditentry"
        " WHERE action = 'deadletters.schedule_send' AND target = %s ORDER BY id",
        (target,),
    )
    # A JSON column: text on SQLite, already decoded from PostgreSQL's jsonb.
    return [
        (user, outcome, json.loads(params) if isinstance(params, str) else params)
        for user, outcome, params in rows
    ]


def finished(db: str, *schedules: int) -> bool:
    return all(schedule_state(db, s) == "finished" for s in schedules)


@pytest.mark.kafka
def test_letters_reach_their_origin_when_due_and_a_backoff_schedule_goes_in_order(
    tmp_path, rabbitmq_vhost, redis_url
):
    db = worker_database(tmp_path)
    env = worker_env(db, MQB_DLQ_SCHEDULE_LEASE=str(LEASE))
    queue = f"dispatch-due-{uuid.uuid4().hex[:8]}"
    topic = create_topic(f"mqb-test-{RUN_ID}-dispatch-{uuid.uuid4().hex[:8]}")
    worker = start_worker(env, f"mqb-due-{uuid.uuid4().hex[:6]}@%h", logs("due"))
    try:
        with Arrivals(rabbitmq_vhost, queue) as arrivals:
            rabbit_args = ["--vhost", rabbitmq_vhost, "--queue", queue, "--delay", "5"]
            plain = seed(env, "rabbitmq", *rabbit_args, "--count", "30")
            assert statuses(db, plain.schedule) == {"scheduled": 30}
            spread = seed(
                env, "rabbitmq", *rabbit_args, "--count", "5",
                "--base", "0.5", "--factor", "2", "--cap", "2",
            )  # fmt: skip
            kafka = seed(env, "kafka", "--topic", topic, "--count", "10", "--delay", "3")
            wait_until(
                lambda: finished(db, plain.schedule, spread.schedule, kafka.schedule),
                60,
                "the three schedules to finish",
            )
            wait_until(lambda: len(arrivals.seen) >= 35, 15, "35 messages at the origin")
            seen = list(arrivals.seen)
        records = kafka_arrivals(topic, 10)
    finally:
        stop_process(worker)
        delete_topics(topic)

    due = {**plain.keys(), **spread.keys()}
    assert sorted(mid for mid, _ in seen) == sorted(due), "each letter once at its origin"
    for mid, at in seen:
        assert due[mid] - 0.05 <= at <= due[mid] + SOON, (mid, at - due[mid])
    # The backoff spread: gaps 0.5, 1, 2, 2 s; sent one after another in that order.
    order = [mid for mid, _ in seen if mid.startswith(spread.prefix)]
    assert order == [f"{spread.prefix}-{i}" for i in range(5)]
    kafka_due = kafka.keys()
    assert sorted(key for key, _ in records) == sorted(kafka_due)
    for key, at in records:
        assert kafka_due[key] - 0.05 <= at <= kafka_due[key] + SOON, (key, at - kafka_due[key])

    for made, count in ((plain, 30), (spread, 5), (kafka, 10)):
        assert statuses(db, made.schedule) == {"requeued": count}
        entries = audits(db, f"schedule #{made.schedule}")
        # One entry per sent batch, acting as the schedule's creator.
        assert entries and {(user, outcome) for user, outcome, _ in entries} == {
            ("seed-operator", "ok")
        }
        assert sum(p["sent"] for _, _, p in entries) == count
        assert len(entries) <= count
    acted = query(
        db,
        "SELECT DISTINCT u.username FROM dashboard_deadletter d JOIN auth_user u"
        " ON u.id = d.acted_by_id WHERE d.schedule_id = %s",
        (plain.schedule,),
    )
    assert acted == [("seed-operator",)]


def test_a_schedule_survives_a_worker_stopped_before_it_was_due(
    tmp_path, rabbitmq_vhost, redis_url
):
    db = worker_database(tmp_path)
    env = worker_env(db, MQB_DLQ_SCHEDULE_LEASE=str(LEASE))
    queue = f"dispatch-restart-{uuid.uuid4().hex[:8]}"
    name = f"mqb-restart-{uuid.uuid4().hex[:6]}@%h"
    log = logs("restart")
    with Arrivals(rabbitmq_vhost, queue) as arrivals:
        worker = start_worker(env, name, log)
        try:
            wait_until(lambda: started(log) == 1, 30, "the dispatcher to start")
            made = seed(
                env, "rabbitmq", "--vhost", rabbitmq_vhost, "--queue", queue,
                "--count", "20", "--delay", "6",
            )  # fmt: skip
        finally:
            stop_process(worker)  # a warm shutdown: the dispatcher stops, the lease is given back
        assert worker.returncode == 0
        assert "lease released" in log.read_text(errors="replace")
        assert lease_holder(redis_url) is None
        wait_until(lambda: time.time() > max(made.due.values()) + 1, 10, "the due time to pass")
        assert statuses(db, made.schedule) == {"scheduled": 20}
        assert arrivals.seen == []

        worker = start_worker(env, name, log)
        try:
            wait_until(lambda: finished(db, made.schedule), 40, "the schedule to finish")
            wait_until(lambda: len(arrivals.seen) >= 20, 15, "20 messages at the origin")
            time.sleep(0.5)  # anything sent twice would be here by now
            ids = Counter(arrivals.ids())
        finally:
            stop_process(worker)
    assert ids == Counter(list(made.keys()))
    assert statuses(db, made.schedule) == {"requeued": 20}


def test_two_workers_run_one_dispatcher_and_a_killed_one_loses_nothing(
    tmp_path, rabbitmq_vhost, redis_url
):
    count, batch = 3000, 100
    db = worker_database(tmp_path)
    env = worker_env(db, MQB_DLQ_SCHEDULE_LEASE=str(LEASE), MQB_DLQ_SCHEDULE_BATCH=str(batch))
    queue = f"dispatch-kill-{uuid.uuid4().hex[:8]}"
    declare(rabbitmq_vhost, queue)
    workers: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name in ("a", "b"):
        log = logs(f"kill-{name}")
        # A session of its own: kill -9 of its group takes the whole worker.
        process = start_worker(env, f"mqb-kill-{name}-{uuid.uuid4().hex[:6]}@%h", log, True)
        workers[name] = (process, log)
    killed = ""
    try:
        with Arrivals(rabbitmq_vhost, queue) as arrivals:
            wait_until(
                lambda: sum(started(log) for _, log in workers.values()) == 1,
                30,
                "one dispatcher",
            )
            holder = next(n for n, (_, log) in workers.items() if started(log) == 1)
            other = "b" if holder == "a" else "a"
            # Both workers' dispatcher threads try for the lease every second.
            time.sleep(3)
            assert started(workers[other][1]) == 0, "a second dispatcher ran"
            made = seed(
                env, "rabbitmq", "--vhost", rabbitmq_vhost, "--queue", queue,
                "--count", str(count), "--delay", "1",
            )  # fmt: skip

            def sending() -> bool:
                # Some sent, and a batch claimed: the kill lands in the in-flight window.
                now = statuses(db, made.schedule)
                return now.get("requeued", 0) >= batch and now.get("requeuing", 0) > 0

            # Freeze the dispatcher once letters are on their way; kill it only if a claimed
            # batch is frozen in flight (it may have settled between the check and the stop).
            group = workers[holder][0].pid
            deadline = time.monotonic() + 60
            while True:
                wait_until(sending, 60, "the letters to be on their way", step=0.02)
                os.killpg(group, signal.SIGSTOP)
                at_kill = statuses(db, made.schedule)
                if at_kill.get("requeuing", 0) > 0 or time.monotonic() > deadline:
                    break
                os.killpg(group, signal.SIGCONT)
            os.killpg(group, signal.SIGKILL)
            workers[holder][0].wait(timeout=30)
            killed = holder
            assert at_kill.get("requeued", 0) < count, f"all sent before the kill: {at_kill}"
            assert at_kill.get("requeuing", 0) > 0, f"no batch in flight at the kill: {at_kill}"

            wait_until(lambda: finished(db, made.schedule), 90, "the schedule to finish")
            wait_until(lambda: len(arrivals.seen) >= count, 30, f"{count} at the origin")
            time.sleep(0.5)
            ids = Counter(arrivals.ids())
    finally:
        for name, (process, _) in workers.items():
            if name != killed:
                stop_process(process)

    assert started(workers[other][1]) == 1, "the other worker took over once the lease expired"
    # The batch the killed dispatcher held was sent again by the one that took over.
    assert "sending again" in workers[other][1].read_text(errors="replace")
    assert statuses(db, made.schedule) == {"requeued": count}
    expected = set(made.keys())
    assert expected - set(ids) == set(), "letters missing at their origin"
    assert set(ids) - expected == set(), "a copy without an original message id"
    duplicates = sum(n - 1 for n in ids.values())
    assert duplicates <= batch, f"{duplicates} duplicates (rows at the kill: {at_kill})"
    print(f"rows at the kill: {at_kill}; {duplicates} duplicates at the origin")


def test_letters_due_while_the_broker_is_down_wait_and_go_when_it_is_back(
    tmp_path, rabbitmq_vhost, redis_url
):
    proxy = TcpProxy(5672)  # not started: the broker is down
    db = worker_database(tmp_path)
    env = worker_env(
        db,
        MQB_DLQ_SCHEDULE_LEASE=str(LEASE),
        MQB_RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:{proxy.port}/",
    )
    queue = f"dispatch-down-{uuid.uuid4().hex[:8]}"
    log = logs("down")
    worker = start_worker(env, f"mqb-down-{uuid.uuid4().hex[:6]}@%h", log)
    try:
        with Arrivals(rabbitmq_vhost, queue) as arrivals:
            made = seed(
                env, "rabbitmq", "--vhost", rabbitmq_vhost, "--queue", queue,
                "--count", "10", "--delay", "0",
            )  # fmt: skip

            def tried() -> bool:
                rows = query(
                    db,
                    "SELECT status, last_error FROM dashboard_deadletter WHERE schedule_id = %s",
                    (made.schedule,),
                )
                return all(status == "scheduled" and error for status, error in rows)

            wait_until(tried, 30, "a failed attempt")
            wait_until(
                lambda: any(o == "failed" for _, o, _ in audits(db, f"schedule #{made.schedule}")),
                10,
                "the failed attempt's audit entry",
            )
            assert statuses(db, made.schedule) == {"scheduled": 10}
            assert schedule_state(db, made.schedule) == "active"

            proxy.start()
            wait_until(lambda: finished(db, made.schedule), 90, "the schedule to finish")
            wait_until(lambda: len(arrivals.seen) >= 10, 15, "10 messages at the origin")
            time.sleep(0.3)
            ids = Counter(arrivals.ids())
    finally:
        stop_process(worker)
        proxy.stop()
    assert ids == Counter(list(made.keys()))
    assert statuses(db, made.schedule) == {"requeued": 10}
    errors = query(
        db, "SELECT last_error FROM dashboard_deadletter WHERE schedule_id = %s", (made.schedule,)
    )
    assert errors == [("",)] * 10
    assert started(log) == 1, "the dispatcher kept running through the broker's absence"


def test_due_letters_go_out_on_time_while_paused_bulk_jobs_hold_every_pool_thread(
    tmp_path, rabbitmq_vhost, redis_url
):
    db = worker_database(tmp_path)
    env = worker_env(db, MQB_DLQ_SCHEDULE_LEASE=str(LEASE))
    queue = f"dispatch-busy-{uuid.uuid4().hex[:8]}"
    parked = f"dispatch-busy-jobs-{uuid.uuid4().hex[:8]}"
    declare(rabbitmq_vhost, parked)
    # As many paused jobs as the worker has pool threads (celery_worker_command: 4).
    jobs = start_paused_jobs(env, db, rabbitmq_vhost, parked, 4)
    log = logs("busy")
    worker = start_worker(env, f"mqb-busy-{uuid.uuid4().hex[:6]}@%h", log)
    try:
        with Arrivals(rabbitmq_vhost, queue) as arrivals:
            wait_until(lambda: len(jobs_started(db, jobs)) == 4, 30, "4 jobs in the pool")
            assert set(jobs_started(db, jobs).values()) == {"paused"}
            made = seed(
                env, "rabbitmq", "--vhost", rabbitmq_vhost, "--queue", queue,
                "--count", "10", "--delay", "2",
            )  # fmt: skip
            wait_until(lambda: len(arrivals.seen) >= 10, 30, "10 messages at the origin")
            time.sleep(0.3)
            seen = list(arrivals.seen)
            # The pool is still full: the jobs waited paused the whole time.
            assert jobs_started(db, jobs) == dict.fromkeys(jobs, "paused")
            set_job_states(db, jobs, "cancelled")
            wait_until(lambda: finished(db, made.schedule), 10, "the schedule to finish")
    finally:
        stop_process(worker)
    due = made.keys()
    assert sorted(mid for mid, _ in seen) == sorted(due), "each letter once at its origin"
    for mid, at in seen:
        assert due[mid] - 0.05 <= at <= due[mid] + SOON, (mid, at - due[mid])
    assert statuses(db, made.schedule) == {"requeued": 10}
    assert worker.returncode == 0, "a warm shutdown once the jobs were cancelled"
    assert lease_holder(redis_url) is None, "the lease was given back"
