"""Capture of managed DLQs into DeadLetter rows, against the real brokers.

Exactly once: every dead letter gets one row with its failure metadata; a
crash between the database commit and the ack (RabbitMQ) or offset commit
(Kafka) leads to a redelivery that is recognised, not stored again; an
unmanaged DLQ is never touched.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import uuid

import pytest
from asgiref.sync import sync_to_async

from brokers.base import BrokerError
from brokers.base.deadletters import OversizeMessage
from dashboard.collector import capture as capture_loop
from dashboard.core import clusters
from dashboard.deadletters.capture import make_capture_engine
from dashboard.deadletters.store import CaptureTarget
from dashboard.models import DeadLetter, ManagedDeadLetterQueue
from tests.support import deadletters as h

pytestmark = [pytest.mark.django_db(transaction=True)]


@sync_to_async
def manage(slug: str, vhost: str, name: str) -> CaptureTarget:
    cluster = clusters.sync_cluster_rows()[slug]
    row = ManagedDeadLetterQueue.objects.create(cluster=cluster, vhost=vhost, name=name)
    return CaptureTarget(row.pk, cluster.pk, slug, cluster.kind, vhost, name)


@sync_to_async
def rows(name: str) -> list[DeadLetter]:
    return list(DeadLetter.objects.filter(dlq=name).order_by("pk"))


@sync_to_async
def count(name: str) -> int:
    return DeadLetter.objects.filter(dlq=name).count()


async def capture_until(target: CaptureTarget, done) -> None:
    """Run the real engine until ``await done()`` is true, then stop it."""
    engine = make_capture_engine(target)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))

    async def finished() -> bool:
        if task.done():
            task.result()  # raise what stopped it
            raise AssertionError("the capture engine stopped by itself")
        return bool(await done())

    try:
        await h.async_wait_for(finished, what="capture")
    finally:
        stop.set()
        with contextlib.suppress(BrokerError):
            await asyncio.wait_for(task, 15)


def drained(vhost: str, queue: str):
    async def check() -> bool:
        return await h.depth(vhost, queue) == 0

    return check


class CrashAfterCommit:
    """A sink that stores, then dies before the ack/offset commit can happen."""

    def __init__(self, sink) -> None:
        self.sink = sink

    async def begin(self) -> None:
        await self.sink.begin()

    async def store(self, letters):
        await self.sink.store(letters)
        raise BrokerError("simulated crash after the database commit")

    async def acknowledged(self, result) -> None:
        raise AssertionError("never reached")


# -- RabbitMQ ----------------------------------------------------------------------


@pytest.mark.rabbitmq
async def test_it_captures_a_managed_rabbitmq_dlq_exactly_once_with_metadata(
    use_clusters, rabbitmq_vhost
):
    base = h.unique("cap")
    events, work, dlq = await h.dead_letter_topology(rabbitmq_vhost, base)
    ids = [f"m-{i}-{uuid.uuid4().hex[:6]}" for i in range(30)]
    await h.reject_through(rabbitmq_vhost, events, work, ids)
    target = await manage("test-rabbitmq", rabbitmq_vhost, dlq)

    await capture_until(target, drained(rabbitmq_vhost, dlq))

    found = await rows(dlq)
    assert sorted(r.message_id for r in found) == sorted(ids)
    first = next(r for r in found if r.message_id == ids[0])
    assert first.vhost == rabbitmq_vhost
    assert (first.origin_queue, first.origin_exchange) == (work, events)
    assert first.origin_routing_key == "order.0.created"
    assert first.reason == "rejected"
    assert first.attempts == 1
    assert first.last_failed_at is not None
    assert first.failure_details["conventions"] == ["x-death"]
    assert bytes(first.body) == b'{"order": 0}'
    assert first.headers["x-tenant"] == "acme"
    assert first.properties["content_type"] == "application/json"
    assert len({r.fingerprint for r in found}) == 1
    assert await h.depth(rabbitmq_vhost, dlq) == 0
    managed = await sync_to_async(ManagedDeadLetterQueue.objects.get)(pk=target.managed_id)
    assert managed.captured_count == len(ids)
    assert managed.capture_acked_through == max(r.pk for r in found)


@pytest.mark.rabbitmq
async def test_a_redelivery_after_a_crash_between_commit_and_ack_is_not_stored_twice(
    use_clusters, rabbitmq_vhost
):
    base = h.unique("crash")
    events, work, dlq = await h.dead_letter_topology(rabbitmq_vhost, base)
    ids = [f"c-{i}" for i in range(12)]
    await h.reject_through(rabbitmq_vhost, events, work, ids)
    # Three byte-identical messages (no id, no timestamp): three rows, each once.
    await sync_to_async(h.publish_http)(rabbitmq_vhost, dlq, "same", times=3)
    target = await manage("test-rabbitmq", rabbitmq_vhost, dlq)

    with pytest.raises(BrokerError, match="simulated crash"):
        engine = make_capture_engine(target)
        engine.sink = CrashAfterCommit(engine.sink)
        await asyncio.wait_for(engine.run(asyncio.Event()), 20)
    stored_before = await count(dlq)
    assert stored_before > 0
    assert await h.depth(rabbitmq_vhost, dlq) == len(ids) + 3  # nothing was acked

    await capture_until(target, drained(rabbitmq_vhost, dlq))

    found = await rows(dlq)
    assert len(found) == len(ids) + 3
    assert sorted(r.message_id for r in found if r.message_id) == sorted(ids)
    same = [r for r in found if bytes(r.body) == b"same"]
    assert len(same) == 3
    assert len({r.capture_key for r in same}) == 3
    assert await h.depth(rabbitmq_vhost, dlq) == 0


@pytest.mark.rabbitmq
async def test_it_never_touches_an_unmanaged_dlq(use_clusters, rabbitmq_vhost):
    managed_base, other_base = h.unique("mng"), h.unique("unm")
    events, work, dlq = await h.dead_letter_topology(rabbitmq_vhost, managed_base)
    other_events, other_work, other_dlq = await h.dead_letter_topology(rabbitmq_vhost, other_base)
    await h.reject_through(rabbitmq_vhost, events, work, ["a1", "a2", "a3"])
    await h.reject_through(rabbitmq_vhost, other_events, other_work, ["b1", "b2", "b3", "b4"])
    await manage("test-rabbitmq", rabbitmq_vhost, dlq)

    stop = asyncio.Event()
    loop_task = asyncio.create_task(capture_loop.run(stop, 0.5))
    try:
        await h.async_wait_for(lambda: _count_is(dlq, 3), what="the managed DLQ captured")
        await asyncio.sleep(1)
    finally:
        stop.set()
        await asyncio.wait_for(loop_task, 30)

    assert await count(other_dlq) == 0
    assert await h.depth(rabbitmq_vhost, other_dlq) == 4
    assert await h.depth(rabbitmq_vhost, dlq) == 0


async def _count_is(name: str, expected: int) -> bool:
    return await count(name) == expected


@pytest.mark.rabbitmq
async def test_it_stops_capturing_a_dlq_that_is_let_go(use_clusters, rabbitmq_vhost):
    events, work, dlq = await h.dead_letter_topology(rabbitmq_vhost, h.unique("go"))
    await h.reject_through(rabbitmq_vhost, events, work, ["g1", "g2"])
    target = await manage("test-rabbitmq", rabbitmq_vhost, dlq)
    stop = asyncio.Event()
    loop_task = asyncio.create_task(capture_loop.run(stop, 0.3))
    try:
        await h.async_wait_for(lambda: _count_is(dlq, 2), what="the managed DLQ captured")
        await ManagedDeadLetterQueue.objects.filter(pk=target.managed_id).aupdate(active=False)
        await asyncio.sleep(1.5)  # a few reconcile intervals: the capture task stops
        await h.reject_through(rabbitmq_vhost, events, work, ["g3"])
        await asyncio.sleep(1.5)
        assert await count(dlq) == 2
        assert await h.depth(rabbitmq_vhost, dlq) == 1
    finally:
        stop.set()
        await asyncio.wait_for(loop_task, 30)


@pytest.mark.rabbitmq
async def test_it_keeps_long_bodies_whole_and_leaves_oversize_ones_on_the_broker(
    use_clusters, rabbitmq_vhost, settings
):
    settings.MQB_DLQ_MAX_BODY = 1000
    settings.MQB_DLQ_MAX_MESSAGE_BYTES = 10_000
    dlq = h.unique("big") + ".dlq"
    connection = await h.amqp(rabbitmq_vhost)
    await (await connection.channel()).declare_queue(dlq)
    await connection.close()
    long_body = bytes(range(256)) * 20  # 5,120 bytes
    await h.publish_to(rabbitmq_vhost, dlq, [b"small", long_body, b"x" * 20_000, b"after"])
    target = await manage("test-rabbitmq", rabbitmq_vhost, dlq)

    engine = make_capture_engine(target)
    with pytest.raises(OversizeMessage, match="20000 bytes"):
        await asyncio.wait_for(engine.run(asyncio.Event()), 20)

    found = await rows(dlq)
    assert [r.body_size for r in found] == [5, len(long_body)]
    long_row = found[1]
    assert long_row.body_truncated and bytes(long_row.body) == long_body[:1000]
    full = await sync_to_async(lambda: bytes(long_row.full_body.data))()
    assert full == long_body
    assert await h.depth(rabbitmq_vhost, dlq) == 2  # the oversize message and the one after


# -- Kafka -------------------------------------------------------------------------


def spring_record(i: int, source: str) -> h.Record:
    headers: list[tuple[str, str | bytes | None]] = [
        ("kafka_dlt-original-topic", source.encode()),
        ("kafka_dlt-original-partition", struct.pack(">i", i % 3)),
        ("kafka_dlt-original-offset", struct.pack(">q", 1000 + i)),
        ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", f"order {i} has no customer".encode()),
    ]
    return f"key-{i}".encode(), f'{{"order": {i}}}'.encode(), headers


@pytest.fixture
def kafka_dlq(settings):
    topic = h.create_topic(h.kafka_name("-dlq"), partitions=3)
    settings.MQB_KAFKA_CAPTURE_GROUP = f"{topic}-group-{{slug}}"
    yield topic
    h.delete_group(settings.MQB_KAFKA_CAPTURE_GROUP.format(slug="test-kafka"))
    h.delete_topics(topic)


@pytest.mark.kafka
async def test_it_captures_a_managed_kafka_dlq_exactly_once_and_commits_what_it_stored(
    use_clusters, kafka_dlq, settings
):
    group = settings.MQB_KAFKA_CAPTURE_GROUP.format(slug="test-kafka")
    await sync_to_async(h.produce)(kafka_dlq, [spring_record(i, "orders") for i in range(30)])
    target = await manage("test-kafka", "", kafka_dlq)

    # First a crash between the database commit and the offset commit...
    engine = make_capture_engine(target)
    engine.sink = CrashAfterCommit(engine.sink)
    with pytest.raises(BrokerError, match="simulated crash"):
        await asyncio.wait_for(engine.run(asyncio.Event()), 30)
    assert await count(kafka_dlq) > 0

    # ...then the real thing reads those records again.
    async def all_committed() -> bool:
        committed, end = await sync_to_async(h.committed_vs_end)(kafka_dlq, group)
        return committed == end

    await capture_until(target, all_committed)

    found = await rows(kafka_dlq)
    assert len(found) == 30
    keys = sorted(bytes(r.key or b"") for r in found)
    assert keys == sorted(f"key-{i}".encode() for i in range(30))
    row = next(r for r in found if bytes(r.key or b"") == b"key-4")
    assert (row.origin_topic, row.origin_partition, row.origin_offset) == ("orders", 1, 1004)
    assert row.exception_class == "java.lang.IllegalStateException"
    assert row.exception_message == "order 4 has no customer"
    assert (
        row.capture_key == f"{kafka_dlq}:{row.properties['partition']}:{row.properties['offset']}"
    )
    assert row.headers[1] == ["kafka_dlt-original-partition", {"$bytes": "AAAAAQ=="}]
    assert len({r.fingerprint for r in found}) == 1


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_it_adds_the_exception_of_a_celery_task_from_the_result_backend(
    use_clusters, rabbitmq_vhost, redis_url, settings
):
    import json

    import redis

    settings.MQB_DLQ_CELERY_RESULT_BACKEND = redis_url
    task_id = f"mqb-test-{uuid.uuid4()}"
    client = redis.Redis.from_url(redis_url)
    client.set(
        f"celery-task-meta-{task_id}",
        json.dumps({"status": "FAILURE", "task_id": task_id, "result": {
            "exc_type": "ValueError", "exc_module": "builtins", "exc_message": ["bad amount 12"]}}),
        ex=300,
    )  # fmt: skip
    dlq = h.unique("celery") + ".dlq"
    connection = await h.amqp(rabbitmq_vhost)
    await (await connection.channel()).declare_queue(dlq)
    await connection.close()
    await h.publish_to(
        rabbitmq_vhost,
        dlq,
        [b'[[12], {}, {"callbacks": null}]'],
        headers={"task": "billing.charge", "id": task_id, "retries": 2},
        content_type="application/json",
    )
    target = await manage("test-rabbitmq", rabbitmq_vhost, dlq)
    try:
        await capture_until(target, drained(rabbitmq_vhost, dlq))
    finally:
        client.delete(f"celery-task-meta-{task_id}")

    (row,) = await rows(dlq)
    assert row.message_id  # aio-pika's own id; the task id is in the failure details
    assert row.failure_details["task"] == {"name": "billing.charge", "id": task_id}
    assert (row.exception_class, row.exception_message) == ("ValueError", "bad amount 12")
    assert row.attempts == 3
