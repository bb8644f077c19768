"""Two Celery workers share one bulk requeue on PostgreSQL (set-based claims, SKIP LOCKED).

Real parts: two worker processes on the jobs queue, each running one task at a
time, on a PostgreSQL database of their own (``served_db.postgres_database``);
Redis as the job queue; RabbitMQ and Kafka as the origins. The job's runner
starts a helper, which the other worker takes: both claim batches of the same
frozen selection. Every letter must reach its origin exactly once (counted by
message id or key), both workers must have settled letters, and the job must
end with exact counts. Killing one worker with SIGKILL mid-job loses nothing:
its batches roll back and are sent by the other (at most one batch per lane twice).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from dashboard.deadletters import requeue_job
from tests.support.deadletters import amqp, create_topic, delete_topics, kafka_name
from tests.support.requeue_shared import (
    Workers,
    job_row,
    kafka_keys,
    origin_ids,
    seed_job,
    statuses,
    wait_until_final,
)
from tests.support.served_db import postgres_database, query, served_env

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.kafka]

COUNT = 3000
BATCH = 100


@pytest.fixture
def shared(redis_url, rabbitmq_vhost) -> Iterator[dict[str, Any]]:
    url = postgres_database("shared")
    env = served_env(
        url,
        MQB_JOB_PROGRESS_INTERVAL="0.2",
        MQB_DLQ_REQUEUE_BATCH=str(BATCH),
        MQB_DLQ_REQUEUE_PARALLEL="2",
    )
    workers = Workers(env, "shared")
    names = [workers.start("a"), workers.start("b")]
    try:
        workers.wait_ready()
        yield {"url": url, "env": env, "workers": workers, "names": names}
    finally:
        workers.stop()


async def declare(vhost: str, queue: str) -> None:
    connection = await amqp(vhost)
    channel = await connection.channel()
    await channel.declare_queue(queue, durable=True)
    await connection.close()


def check_counts(row: dict[str, Any], names: list[str], count: int = COUNT) -> None:
    assert row["state"] == "done", row["verdict"]
    assert (row["done"], row["total"]) == (count, count)
    assert f"{count} of {count} requeued, 0 failed, 0 skipped" in row["verdict"], row["verdict"]
    assert row["result"]["requeued"] == count


def test_two_workers_share_a_kafka_bulk_requeue_and_send_each_letter_once(shared):
    topic = create_topic(kafka_name("-origin"))
    try:
        job_id, prefix = seed_job(shared["env"], "kafka", COUNT, topic=topic)
        row = wait_until_final(shared["url"], job_id)

        check_counts(row, shared["names"])
        runners = row["result"]["runners"]
        assert set(runners) == set(shared["names"]), runners
        assert all(n > 0 for n in runners.values()), runners
        assert sum(runners.values()) == COUNT
        assert statuses(shared["url"]) == {"requeued": COUNT}
        keys = kafka_keys(topic, COUNT)
        assert keys == {f"{prefix}-{i}": 1 for i in range(COUNT)}
    finally:
        delete_topics(topic)


def test_two_workers_share_a_rabbitmq_bulk_requeue_and_send_each_letter_once(
    shared, rabbitmq_vhost
):
    origin = f"shared-origin-{uuid.uuid4().hex[:8]}"
    asyncio.run(declare(rabbitmq_vhost, origin))
    job_id, prefix = seed_job(shared["env"], "rabbitmq", COUNT, vhost=rabbitmq_vhost, queue=origin)
    row = wait_until_final(shared["url"], job_id)

    check_counts(row, shared["names"])
    runners = row["result"]["runners"]
    assert set(runners) == set(shared["names"]), runners
    assert all(n > 0 for n in runners.values()), runners
    assert statuses(shared["url"]) == {"requeued": COUNT}
    assert origin_ids(rabbitmq_vhost, origin) == {f"{prefix}-{i}": 1 for i in range(COUNT)}


def test_a_worker_killed_mid_job_loses_nothing(shared, rabbitmq_vhost):
    origin = f"shared-kill-{uuid.uuid4().hex[:8]}"
    asyncio.run(declare(rabbitmq_vhost, origin))
    url, workers = shared["url"], shared["workers"]
    # Enough letters that the job is still running when the runners' first tally
    # (flushed about once a second) names both workers: 3,000 were done by then.
    count = 4 * COUNT
    job_id, prefix = seed_job(shared["env"], "rabbitmq", count, vhost=rabbitmq_vhost, queue=origin)

    # Once both runners have settled letters, kill the helper's worker (not the job's).
    killed = ""
    deadline = time.monotonic() + 120
    while not killed and time.monotonic() < deadline:
        row = job_row(url, job_id)
        assert row["state"] not in ("done", "failed", "cancelled"), f"ended first: {row}"
        runners = row["result"].get("runners", {})
        if len(runners) == 2 and row["worker"]:
            killed = next(name for name in runners if name != row["worker"])
            os.kill(workers.processes[killed].pid, signal.SIGKILL)
            workers.processes[killed].wait(timeout=30)
        time.sleep(0.02)
    assert killed, "the helper never settled letters"
    row = wait_until_final(url, job_id)

    check_counts(row, shared["names"], count)
    assert statuses(url) == {"requeued": count}
    ids = origin_ids(rabbitmq_vhost, origin)
    expected = {f"{prefix}-{i}" for i in range(count)}
    assert expected - set(ids) == set(), "letters missing at their origin"
    assert set(ids) - expected == set(), "a copy without an original message id"
    duplicates = sum(n - 1 for n in ids.values())
    assert duplicates <= BATCH * requeue_job.LANES, f"{duplicates} duplicates for one kill"
    print(f"killed {killed}; {duplicates} duplicates at the origin; runners {row['result']}")


def settled(url: str, job_id: int) -> int:
    sql = "SELECT COUNT(*) FROM dashboard_deadletter WHERE claim_job = %s"
    return int(query(url, sql, (job_id,))[0][0])


def test_pause_and_cancel_reach_both_workers_and_the_counts_stay_exact(shared, rabbitmq_vhost):
    origin = f"shared-pause-{uuid.uuid4().hex[:8]}"
    asyncio.run(declare(rabbitmq_vhost, origin))
    url, count = shared["url"], 10 * COUNT
    job_id, prefix = seed_job(shared["env"], "rabbitmq", count, vhost=rabbitmq_vhost, queue=origin)

    deadline = time.monotonic() + 120
    while len(job_row(url, job_id)["result"].get("runners", {})) < 2:
        assert time.monotonic() < deadline, f"both runners never settled: {job_row(url, job_id)}"
        time.sleep(0.02)
    # As the job page's pause does: the row's state, which every runner reads.
    query(url, "UPDATE dashboard_job SET state = 'paused' WHERE id = %s", (job_id,))
    time.sleep(2)  # every lane ends the batch it holds
    paused_at = settled(url, job_id)
    time.sleep(2)
    assert settled(url, job_id) == paused_at, "letters were sent while paused"
    assert paused_at < count, "the job ended before the pause"
    query(url, "UPDATE dashboard_job SET state = 'cancelled' WHERE id = %s", (job_id,))
    row = wait_until_final(url, job_id)

    assert row["state"] == "cancelled", row["verdict"]
    sent = row["result"]["requeued"]
    assert sent == paused_at
    assert f"Cancelled: {sent} of {count} requeued, 0 failed" in row["verdict"], row["verdict"]
    assert f"{count - sent} not reached" in row["verdict"], row["verdict"]
    assert statuses(url) == {"requeued": sent, "pending": count - sent}
    ids = origin_ids(rabbitmq_vhost, origin)
    assert all(n == 1 for n in ids.values())
    requeued = query(url, "SELECT message_id FROM dashboard_deadletter WHERE status = 'requeued'")
    assert set(ids) == {m for (m,) in requeued}
    assert all(i.startswith(prefix) for i in ids)
