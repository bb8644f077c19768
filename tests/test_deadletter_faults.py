"""Fault: the collector is killed (SIGKILL) during capture while dead letters keep arriving.

A real ``manage.py collect --only capture`` process on a database of its own (of
the kind MQB_TEST_DB names) captures a managed RabbitMQ DLQ (in the run's test
vhost) and a managed Kafka DLQ topic (unique name) while publishers keep
dead-lettering messages with unique ids. It is killed five times at random
moments while rows are being written, and restarted each time. Capture waits
0.3 s between its database commit and its ack/offset commit here, so many kills
land in that window. In the end every id is in the database exactly once and the
brokers hold nothing unaccounted for: the RabbitMQ DLQ is empty and the capture
group's committed offsets equal the end offsets.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import threading
import time
from functools import partial
from pathlib import Path
from urllib.parse import quote

import aio_pika
import pytest
from confluent_kafka import Producer

from tests.conftest import KAFKA, PYTHON, ROOT
from tests.support import deadletters as h
from tests.support.collectors import stored_ids
from tests.support.served_db import query, served_database, served_env

pytestmark = [pytest.mark.rabbitmq, pytest.mark.kafka]

MESSAGES = 2500  # per broker
KILLS = 5


def _held_back(start: int, total: int, release: threading.Event) -> None:
    """The last fifth is published only once the kills are over, so that every kill
    lands while messages are still arriving, however fast this machine is."""
    if start >= total * 4 // 5:
        release.wait(120)


def _publish_rabbitmq(
    vhost: str, work: str, ids: list[str], stop: threading.Event, release: threading.Event
) -> None:
    async def publish() -> None:
        connection = await h.amqp(vhost)
        try:
            channel = await connection.channel(publisher_confirms=True)
            for start in range(0, len(ids), 25):
                if stop.is_set():
                    return
                await asyncio.to_thread(_held_back, start, len(ids), release)
                for message_id in ids[start : start + 25]:
                    message = aio_pika.Message(message_id.encode(), message_id=message_id)
                    await channel.default_exchange.publish(message, work)
                await asyncio.sleep(0.12)
        finally:
            await connection.close()

    asyncio.run(publish())


def _produce_kafka(
    topic: str, ids: list[str], stop: threading.Event, release: threading.Event
) -> None:
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 5})
    for start in range(0, len(ids), 25):
        if stop.is_set():
            break
        _held_back(start, len(ids), release)
        for message_id in ids[start : start + 25]:
            producer.produce(
                topic,
                message_id.encode(),
                key=message_id.encode(),
                headers=[("x-original-topic", b"orders"), ("x-exception", b"Boom: no")],
            )
        producer.poll(0)
        time.sleep(0.12)
    producer.flush(15)


def _count(db: str) -> int:
    return int(query(db, "SELECT count(*) FROM dashboard_deadletter")[0][0])


def _more_than(db: str, before: int) -> bool:
    return _count(db) > before


def _all_committed(topic: str, group: str) -> bool:
    committed, end = h.committed_vs_end(topic, group)
    return committed == end


def _collector(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [PYTHON, "manage.py", "collect", "--only", "capture", "--interval", "1"],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def test_it_loses_nothing_and_stores_nothing_twice_when_the_collector_is_killed(
    rabbitmq_vhost, kafka_config, tmp_path
):
    base = h.unique("kill")
    work, dlq = f"{base}-work", f"{base}.dlq"
    with h.mgmt() as http:
        vhost = h.q(rabbitmq_vhost)
        http.put(f"/api/queues/{vhost}/{h.q(dlq)}", json={"durable": True}).raise_for_status()
        http.put(
            f"/api/queues/{vhost}/{h.q(work)}",
            json={"durable": True, "arguments": {
                "x-message-ttl": 0, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq,
            }},
        ).raise_for_status()  # fmt: skip
    topic = h.create_topic(h.kafka_name("-dlq"), partitions=3)
    group = f"{topic}-capture"
    db = served_database("kill", tmp_path)
    env = served_env(
        db,
        MQB_STATE_DIR=str(tmp_path),
        MQB_DEFAULT_CLUSTERS="rabbitmq,kafka",
        MQB_RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:5672/{quote(rabbitmq_vhost, safe='')}",
        MQB_KAFKA_BOOTSTRAP_SERVERS=KAFKA,
        MQB_KAFKA_DLQ_TOPICS=topic,
        MQB_KAFKA_CAPTURE_GROUP=group,
        MQB_DLQ_CAPTURE_BATCH="100",
        MQB_DLQ_CAPTURE_PREFETCH="200",
        # Widen the window between the database commit and the ack/offset commit,
        # so that kills land in it (where a redelivery must be recognised) often.
        MQB_DLQ_CAPTURE_ACK_DELAY="0.3",
    )
    setup = (
        "from dashboard.core.clusters import sync_cluster_rows;"
        "from dashboard.models import ManagedDeadLetterQueue as M;"
        "c = sync_cluster_rows();"
        f"M.objects.create(cluster=c['local-rabbitmq'], vhost={rabbitmq_vhost!r}, name={dlq!r});"
        f"M.objects.create(cluster=c['local-kafka'], vhost='', name={topic!r})"
    )
    subprocess.run([PYTHON, "manage.py", "shell", "-c", setup], cwd=ROOT, env=env, check=True)

    rabbit_ids = [f"r-{i}-{base}" for i in range(MESSAGES)]
    kafka_ids = [f"k-{i}-{base}" for i in range(MESSAGES)]
    stop = threading.Event()
    release = threading.Event()
    publishers = [
        threading.Thread(
            target=_publish_rabbitmq, args=(rabbitmq_vhost, work, rabbit_ids, stop, release)
        ),
        threading.Thread(target=_produce_kafka, args=(topic, kafka_ids, stop, release)),
    ]
    log = tmp_path / "collector.log"
    rng = random.Random()
    collector = None
    try:
        for thread in publishers:
            thread.start()
        for _ in range(KILLS):
            collector = _collector(env, log)
            before = _count(db)
            # Kill while rows are being written: after the first new row, at a random moment.
            h.wait_for(partial(_more_than, db, before), timeout=30, what="capture to start")
            time.sleep(rng.uniform(0.0, 1.0))
            os.kill(collector.pid, signal.SIGKILL)
            collector.wait(10)
        assert publishers[0].is_alive() or publishers[1].is_alive(), "kills ended after publishing"
        release.set()
        collector = _collector(env, log)
        for thread in publishers:
            thread.join(60)
        h.wait_for(lambda: _count(db) >= 2 * MESSAGES, timeout=40, what="every dead letter")
        # Then let it acknowledge and commit what it stored last.
        h.wait_for(lambda: asyncio.run(h.depth(rabbitmq_vhost, dlq)) == 0, what="an empty DLQ")
        h.wait_for(partial(_all_committed, topic, group), what="committed offsets at the end")
        time.sleep(1)  # a second row, if any were coming, has time to appear
        rabbit, kafka = stored_ids(db)
    finally:
        stop.set()
        release.set()
        if collector is not None and collector.poll() is None:
            collector.send_signal(signal.SIGTERM)
            collector.wait(30)
        h.delete_group(group)
        h.delete_topics(topic)

    assert sorted(rabbit) == sorted(rabbit_ids), "RabbitMQ: every id exactly once"
    assert sorted(kafka) == sorted(kafka_ids), "Kafka: every id exactly once"
    assert asyncio.run(h.depth(rabbitmq_vhost, dlq)) == 0
