"""Kafka dead-letter capture while the capture group's coordinator is down, and as it returns.

Real 3-broker Kafka from ``ops/cluster.sh`` (shared by the cluster test
modules). The capture runs as the collector runs it (``capture_forever``:
restarted after a failure); the broker coordinating its consumer group is
killed with SIGKILL, so the group moves to another broker (and the DLQ's
partitions led there move too). Dead letters produced before, while the broker
is down and while it starts again are each stored once.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest

from dashboard.collector.capture import capture_forever
from dashboard.core.connections import close_all
from dashboard.deadletters.capture import capture_group
from tests.support import cluster as support
from tests.support.cluster import KAFKA_SLUG, await_until
from tests.support.deadletter_flow import manage, rows_of, stored_count

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(900),
]

clustered_brokers = support.clustered_brokers
cluster_session = support.cluster_session


@pytest.fixture
async def watched(use_clusters, clustered_brokers):
    use_clusters(clustered_brokers.rabbitmq, clustered_brokers.kafka)
    yield clustered_brokers
    await close_all()
    await asyncio.to_thread(support.start_every_node)


async def counted(dlq: str, expected: int) -> bool:
    return await stored_count(dlq) == expected


async def test_kafka_capture_stores_each_letter_once_while_the_coordinator_is_down_and_back(
    watched,
):
    base = f"cl-{uuid.uuid4().hex[:8]}"
    origin, dlq = f"{base}-orders", f"{base}-orders-dlq"
    for topic in (origin, dlq):
        await asyncio.to_thread(support.create_topic, topic)
    target = await manage(KAFKA_SLUG, "", dlq)
    stop = asyncio.Event()
    capture = asyncio.create_task(capture_forever(target, stop))
    records = [support.spring_record(i, origin) for i in range(30)]
    try:
        await asyncio.to_thread(support.produce, dlq, records[:10])
        await await_until(lambda: counted(dlq, 10), "the first letters captured")
        broker = await asyncio.to_thread(support.coordinator_of, capture_group(KAFKA_SLUG))
        await asyncio.to_thread(support.stop_node, "kafka", broker, kill=True)
        await asyncio.to_thread(support.produce, dlq, records[10:20])
        await await_until(lambda: counted(dlq, 20), "every letter captured with a broker down")
        # The broker starts again while more letters come in.
        starting = asyncio.ensure_future(asyncio.to_thread(support.start_node, "kafka", broker))
        await asyncio.to_thread(support.produce, dlq, records[20:])
        await starting
        await await_until(lambda: counted(dlq, 30), "every letter captured as the broker returns")
    finally:
        stop.set()
        await asyncio.wait_for(capture, 30)
    letters = await rows_of(dlq)
    assert sorted(bytes(r.key or b"") for r in letters) == sorted(k for k, _, _ in records)
    assert len({r.capture_key for r in letters}) == 30
    assert {r.origin_topic for r in letters} == {origin}
