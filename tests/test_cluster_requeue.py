"""A bulk requeue into a clustered broker while the destination's leader moves loses nothing.

Real 3-node RabbitMQ and 3-broker Kafka from ``ops/cluster.sh`` (shared by the
cluster test modules). A few thousand letters are requeued by the real job
runner, rate limited so that the job is still sending when the node leading the
destination is killed with SIGKILL half way:

- RabbitMQ: a quorum queue led by node 1, which also holds the job's AMQP
  connection (the config lists node 1 first). Publishes whose confirm is lost
  with the connection come back as "unknown" and are sent again through another
  node, so every letter arrives **at least once** with its original message id;
  a duplicate is possible (a publish the dead leader had replicated before its
  confirm was lost), at most one batch of them.
- Kafka: a topic with replication factor 3 and ``min.insync.replicas=2``; the
  sender's idempotent producer (``acks=all``) retries inside librdkafka and the
  job resends a record without a delivery report in time, so again every letter
  arrives at least once (same key and value).

Both jobs end ``done`` with every letter counted requeued and none failed.
"""

from __future__ import annotations

import asyncio
import collections
import uuid
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from dashboard.core.connections import close_all
from dashboard.deadletters import requeue_job
from dashboard.jobs import control, runner
from dashboard.models import DeadLetter, Job
from tests.support import cluster as support
from tests.support.cluster import AMQP_URLS, KAFKA_SLUG, RABBIT_SLUG, VHOST, await_until

pytestmark = [
    pytest.mark.rabbitmq,
    pytest.mark.kafka,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]

clustered_brokers = support.clustered_brokers
cluster_session = support.cluster_session

LETTERS = 3000
RATE = 600  # letters per second: the job runs some 5 s, long enough to kill a node in it


@pytest.fixture
async def watched(use_clusters, clustered_brokers, monkeypatch):
    use_clusters(clustered_brokers.rabbitmq, clustered_brokers.kafka)
    monkeypatch.setattr(control, "enqueue", lambda job: None)  # this test runs the job
    yield clustered_brokers
    await close_all()
    await asyncio.to_thread(support.start_every_node)


@sync_to_async
def job_row(pk: int) -> Job:
    return Job.objects.get(pk=pk)


@sync_to_async
def statuses(ids: list[int]) -> collections.Counter[str]:
    return collections.Counter(
        DeadLetter.objects.filter(pk__in=ids).values_list("status", flat=True)
    )


async def requeue_while_killing(operator: Any, ids: list[int], kill: tuple[str, int]) -> Job:
    """Run the bulk requeue job of ``ids``; kill ``kill`` (kind, node) once a quarter is sent."""
    job = await requeue_job.do_start_bulk_requeue(user=operator, ids=ids, rate_limit=RATE)
    running = asyncio.ensure_future(asyncio.to_thread(runner.run_job, job.pk, job.task_id))

    async def a_quarter_sent() -> bool:
        assert not running.done(), f"the job ended before the kill: {await job_row(job.pk)}"
        return (await job_row(job.pk)).done >= len(ids) // 4

    await await_until(a_quarter_sent, "a quarter of the letters sent")
    await asyncio.to_thread(support.stop_node, kill[0], kill[1], kill=True)
    assert not running.done(), "the job ended before the node was down: send more letters"
    assert await asyncio.wait_for(running, 600) == Job.State.DONE
    return await job_row(job.pk)


def assert_at_least_once(seen: list[str], prefix: str, batch: int) -> None:
    expected = {f"{prefix}-{i}" for i in range(LETTERS)}
    counts = collections.Counter(seen)
    assert set(counts) == expected, f"missing: {sorted(expected - set(counts))[:5]}"
    assert len(seen) - LETTERS <= batch, "more duplicates than the batch in flight"


async def test_a_rabbitmq_bulk_requeue_loses_nothing_while_the_queue_leader_dies(operator, watched):
    queue = f"cl-{uuid.uuid4().hex[:8]}"
    # Declared through node 1's management API: node 1 leads it.
    await asyncio.to_thread(
        support.management,
        f"/api/queues/{VHOST}/{queue}",
        "PUT",
        json={"durable": True, "arguments": {}},
    )
    assert await asyncio.to_thread(support.queue_leader, queue) == 1
    prefix = uuid.uuid4().hex[:8]
    ids = await sync_to_async(support.seed_letters)(RABBIT_SLUG, prefix, LETTERS, queue=queue)

    job = await requeue_while_killing(operator, ids, ("rabbitmq", 1))

    assert (job.result["requeued"], job.result["failed"], job.result["skipped"]) == (
        LETTERS,
        0,
        0,
    ), job.verdict
    assert job.verdict.startswith(f"Done: {LETTERS} of {LETTERS} requeued, 0 failed")
    assert await statuses(ids) == {DeadLetter.Status.REQUEUED: LETTERS}
    assert await asyncio.to_thread(support.queue_leader, queue) in (2, 3)
    seen = await support.message_ids(AMQP_URLS[1], queue)
    assert_at_least_once(seen, prefix, requeue_job.batch_size(RATE))


async def test_a_kafka_bulk_requeue_loses_nothing_while_the_partition_leader_dies(
    operator, watched
):
    topic = f"cl-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(support.create_topic, topic, 1)
    leader = await asyncio.to_thread(support.partition_leader, topic)
    prefix = uuid.uuid4().hex[:8]
    ids = await sync_to_async(support.seed_letters)(KAFKA_SLUG, prefix, LETTERS, topic=topic)

    job = await requeue_while_killing(operator, ids, ("kafka", leader))

    assert (job.result["requeued"], job.result["failed"], job.result["skipped"]) == (
        LETTERS,
        0,
        0,
    ), job.verdict
    assert await statuses(ids) == {DeadLetter.Status.REQUEUED: LETTERS}
    assert await asyncio.to_thread(support.partition_leader, topic) not in (leader, -1)
    seen = await asyncio.to_thread(support.topic_keys, topic, LETTERS)
    assert_at_least_once(seen, prefix, requeue_job.batch_size(RATE))
