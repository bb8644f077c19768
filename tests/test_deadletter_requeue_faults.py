"""Fault: the Celery worker is killed (SIGKILL) 5 times during a 100,000-letter bulk requeue.

Real parts: a Celery worker process on a database of its own (of the kind
MQB_TEST_DB names), RabbitMQ in the test run's vhost, Redis as the job queue.
The letters are seeded as captured rows (``tests.support.requeue_seed``) whose
origin is one queue. The worker is killed at random moments while the job runs
and started again under the same name, as a supervisor would; the job must go on
from its recorded progress and end with exact counts. Then every message at the
origin is read: none is missing, and any duplicate carries an original message
id and is within the in-flight window: one batch per lane of each runner per kill
(on PostgreSQL two runners of two lanes each, ``requeue_job.LANES``; on SQLite
one runner with one batch at the broker).
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from dashboard.deadletters.requeue_job import LANES
from tests.conftest import PYTHON, ROOT, celery_worker_command, stop_process
from tests.support.deadletters import amqp
from tests.support.move import consume_ids
from tests.support.served_db import query, served_database, served_env

pytestmark = [
    pytest.mark.celery,
    pytest.mark.redis,
    pytest.mark.rabbitmq,
    # Seeding, the job with its five restarts and reading the origin back take about
    # two minutes on a loaded 2-core machine, on either database: pytest's 120 s ended
    # it at the last count; the job itself still has its own 600 s deadline below.
    pytest.mark.timeout(660),
]

COUNT = 100_000
BATCH = 1000
KILLS = 5
# Runners sharing the job: on PostgreSQL the job's and a helper (here two threads of
# the one worker, both killed with it), each with LANES batches in flight; SQLite runs one.
PARALLEL = 2


def job_row(db: str, job_id: int) -> tuple[str, int, str]:
    (row,) = query(db, "SELECT state, done, verdict FROM dashboard_job WHERE id = %s", (job_id,))
    return row[0], int(row[1]), row[2]


def statuses(db: str) -> dict[str, int]:
    rows = query(db, "SELECT status, COUNT(*) FROM dashboard_deadletter GROUP BY status")
    return {str(status): int(n) for status, n in rows}


async def declare(vhost: str, queue: str) -> None:
    connection = await amqp(vhost)
    channel = await connection.channel()
    await channel.declare_queue(queue, durable=True)
    await connection.close()


async def take_ids(vhost: str, queue: str) -> list[str]:
    connection = await amqp(vhost)
    try:
        return await consume_ids(connection, queue)
    finally:
        await connection.close()


def start_worker(env: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:

    with log.open("ab") as out:
        return subprocess.Popen(
            celery_worker_command("-n", name),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def test_a_bulk_requeue_loses_nothing_when_its_worker_is_killed_five_times(
    tmp_path, rabbitmq_vhost, redis_url
):
    db = served_database("requeue-kill", tmp_path)
    env = served_env(
        db,
        MQB_JOB_PROGRESS_INTERVAL="0.2",
        MQB_DLQ_REQUEUE_BATCH=str(BATCH),
        MQB_DLQ_REQUEUE_PARALLEL=str(PARALLEL),
    )
    # Batches at the broker at once: a lane's batch is sent and then settled in its
    # transaction, so a kill between the two sends it again.
    in_flight = PARALLEL * LANES if db.startswith("postgres") else 1
    origin = f"kill-origin-{uuid.uuid4().hex[:8]}"
    asyncio.run(declare(rabbitmq_vhost, origin))
    prefix = uuid.uuid4().hex[:8]
    seeded = subprocess.run(
        [
            PYTHON,
            "-m",
            "tests.support.requeue_seed",
            "rabbitmq",
            "--vhost",
            rabbitmq_vhost,
            "--queue",
            origin,
            "--count",
            str(COUNT),
            "--size",
            "200",
            "--prefix",
            prefix,
            "--start-job",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    job_id = int(seeded.stdout.strip().splitlines()[-1])

    name = f"mqb-kill-{uuid.uuid4().hex[:8]}@%h"
    log = ROOT / "var" / "log" / "test-requeue-kill-worker.log"
    rng = random.Random()
    # Kill points spread over the run, each at a random place in its own stretch.
    points = [int(COUNT * (0.08 + 0.15 * k + rng.uniform(0, 0.1))) for k in range(KILLS)]
    worker = start_worker(env, name, log)
    kills: list[int] = []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            state, done, verdict = job_row(db, job_id)
            if state in ("done", "failed", "cancelled"):
                break
            if len(kills) < KILLS and state == "running" and done >= points[len(kills)]:
                os.kill(worker.pid, signal.SIGKILL)
                worker.wait(timeout=30)
                kills.append(done)
                worker = start_worker(env, name, log)
            time.sleep(0.05)
        else:
            pytest.fail(f"job #{job_id} did not end: {job_row(db, job_id)}")
    finally:
        stop_process(worker)

    state, done, verdict = job_row(db, job_id)
    assert len(kills) == KILLS, f"killed only at {kills} before the job ended: {verdict}"
    assert state == "done", verdict
    assert done == COUNT
    assert f"{COUNT} of {COUNT} requeued, 0 failed" in verdict, verdict
    assert statuses(db) == {"requeued": COUNT}

    ids = Counter(asyncio.run(take_ids(rabbitmq_vhost, origin)))
    expected = {f"{prefix}-{i}" for i in range(COUNT)}
    assert expected - set(ids) == set(), "letters missing at their origin"
    assert set(ids) - expected == set(), "a copy without an original message id"
    duplicates = sum(n - 1 for n in ids.values())
    assert duplicates <= KILLS * BATCH * in_flight, f"{duplicates} duplicates for {KILLS} kills"
    print(f"killed at done={kills}; {duplicates} duplicates at the origin")
