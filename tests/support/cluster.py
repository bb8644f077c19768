"""The clustered brokers of ``ops/cluster.sh`` for the tests that need them.

:func:`clustered_brokers` is a module fixture: it starts the 3-node RabbitMQ
cluster and the 3-broker Kafka (``ops/cluster.sh up``, which leaves a running
cluster as it is) and gives the dashboard's cluster configs for them (every node
listed, node 1 first). The tests stop and start nodes, so one module at a time
uses the clusters: the fixture holds an exclusive lock on
``var/cluster-tests.lock`` while its module runs (``make test``'s xdist workers
each run whole files; a worker wanting the clusters waits for another's module
to end). The clusters stay up between modules; each process that used them
stops and deletes them (``ops/cluster.sh down``, under the lock) when its
session ends (:func:`cluster_session`), so a worker still to come starts them
again. A test module imports both fixtures. Nodes are stopped
and started with :func:`stop_node` / :func:`start_node`. Waits are polls with
generous deadlines (:func:`wait_until`); nothing is timed.
"""

from __future__ import annotations

import asyncio
import fcntl
import struct
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

import aio_pika
import httpx
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from brokers.base import ClusterConfig, Secret
from tests.conftest import GUEST, ROOT

T = TypeVar("T")

CLUSTER_SH = ROOT / "ops" / "cluster.sh"
NODES = (1, 2, 3)
VHOST = "mqb-cluster"
RABBIT_SLUG = "cl-rabbitmq"
KAFKA_SLUG = "cl-kafka"
AMQP_URLS = tuple(f"amqp://127.0.0.1:{5680 + n}/{quote(VHOST, safe='')}" for n in NODES)
MANAGEMENT_URLS = tuple(f"http://127.0.0.1:{15680 + n}" for n in NODES)
BOOTSTRAP = ",".join(f"127.0.0.1:{9191 + n}" for n in NODES)


def rabbit_node(n: int) -> str:
    return f"mqb-c{n}@localhost"


@dataclass(frozen=True)
class ClusteredBrokers:
    rabbitmq: ClusterConfig
    kafka: ClusterConfig


def cluster_sh(*args: str, timeout: float = 600) -> str:
    """Run ``ops/cluster.sh ARGS``; its output, or a failure showing it."""
    done = subprocess.run(
        [str(CLUSTER_SH), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"ops/cluster.sh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


def stop_node(kind: str, n: int, *, kill: bool = False) -> None:
    cluster_sh("stop-node", kind, str(n), *(["--kill"] if kill else []))


def start_node(kind: str, n: int) -> None:
    cluster_sh("start-node", kind, str(n))


def start_every_node() -> None:
    """Start whichever node is down (a test that failed half way leaves one stopped)."""
    for kind in ("rabbitmq", "kafka"):
        for n in NODES:
            start_node(kind, n)


def rabbitmqctl(n: int, *args: str) -> str:
    """``rabbitmqctl ARGS`` against RabbitMQ node ``n``."""
    return cluster_sh("rabbitmqctl", str(n), *args)


LOCK = ROOT / "var" / "cluster-tests.lock"


@contextmanager
def cluster_lock() -> Iterator[None]:
    """The clusters for this process alone (other test processes wait)."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def cluster_session() -> Iterator[None]:
    """Stops and deletes the clusters when this test process's session ends (under the
    lock: another process's module may be using them; it starts them again if it needs
    them afterwards). A session fixture, so xdist waits for it before ending a worker."""
    yield
    with cluster_lock():
        cluster_sh("down")


@pytest.fixture(scope="module")
def clustered_brokers(cluster_session: None) -> Iterator[ClusteredBrokers]:
    with cluster_lock():
        cluster_sh("up")
        yield ClusteredBrokers(
            rabbitmq=ClusterConfig(
                slug=RABBIT_SLUG,
                kind="rabbitmq",
                name="Clustered RabbitMQ",
                amqp_url=AMQP_URLS[0],
                amqp_failover_urls=AMQP_URLS[1:],
                management_url=MANAGEMENT_URLS[0],
                management_failover_urls=MANAGEMENT_URLS[1:],
                username="guest",
                password=Secret("guest"),
                timeout=4.0,
            ),
            kafka=ClusterConfig(
                slug=KAFKA_SLUG, kind="kafka", name="Clustered Kafka", bootstrap_servers=BOOTSTRAP
            ),
        )


async def await_until(
    check: Callable[[], Awaitable[T | None]], what: str, deadline: float = 180
) -> T:
    """Like :func:`wait_until`, for an async ``check``."""
    end = time.monotonic() + deadline
    last: object = None
    while True:
        try:
            found = await check()
            if found:
                return found
            last = found
        except Exception as exc:  # a node on its way down or up
            last = exc
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {deadline:g} s (last: {last!r})")
        await asyncio.sleep(0.5)


def wait_until(check: Callable[[], T], what: str, deadline: float = 180) -> T:
    """Poll ``check`` until it returns something truthy (exceptions count as not yet)."""
    end = time.monotonic() + deadline
    last: object = None
    while True:
        try:
            found = check()
            if found:
                return found
            last = found
        except Exception as exc:  # a node on its way down or up
            last = exc
        if time.monotonic() > end:
            pytest.fail(f"{what}: not within {deadline:g} s (last: {last!r})")
        time.sleep(0.5)


# -- direct access, on whichever node answers -----------------------------------------


def management(path: str, method: str = "GET", **kwargs: Any) -> Any:
    """A management API call on the first node that answers."""
    for url in MANAGEMENT_URLS:
        try:
            with httpx.Client(base_url=url, auth=GUEST, timeout=10) as http:
                response = http.request(method, path, **kwargs)
        except httpx.TransportError:
            continue
        response.raise_for_status()
        return response.json() if response.content else None
    raise AssertionError("no RabbitMQ management node answered")


def running_rabbit_nodes() -> set[str]:
    nodes = management("/api/nodes", params={"columns": "name,running"})
    return {n["name"] for n in nodes if n.get("running")}


def kafka_admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": BOOTSTRAP, "log_level": 0})


def create_topic(name: str, partitions: int = 3) -> None:
    """A topic with replication factor 3, once every partition has a leader."""
    admin = kafka_admin()
    admin.create_topics([NewTopic(name, partitions, 3)], request_timeout=30)[name].result()

    def led() -> bool:
        topic = admin.list_topics(topic=name, timeout=5).topics.get(name)
        if topic is None or len(topic.partitions) != partitions:
            return False
        return all(p.leader >= 0 and len(p.isrs) == 3 for p in topic.partitions.values())

    wait_until(led, f"leaders and 3 in-sync replicas for {name}")


# -- dead letters on the cluster ------------------------------------------------------


async def dead_letter_topology(url: str, base: str) -> tuple[str, str, str]:
    """``<base>-events`` (topic) -> ``<base>-work`` -> ``<base>-dlx`` -> ``<base>.dlq``, both
    queues quorum (the vhost's default), declared on the node at ``url`` (their leader).

    Returns (events exchange, work queue, dlq).
    """
    events, work, dlx, dlq = f"{base}-events", f"{base}-work", f"{base}-dlx", f"{base}.dlq"
    connection = await aio_pika.connect(url, login="guest", password="guest")
    async with connection:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(events, aio_pika.ExchangeType.TOPIC)
        dead = await channel.declare_exchange(dlx, aio_pika.ExchangeType.DIRECT)
        queue = await channel.declare_queue(
            work,
            durable=True,
            arguments={"x-dead-letter-exchange": dlx, "x-dead-letter-routing-key": "dead"},
        )
        await queue.bind(exchange, "order.#")
        target = await channel.declare_queue(dlq, durable=True)
        await target.bind(dead, "dead")
    return events, work, dlq


async def reject_through(url: str, events: str, work: str, ids: list[str]) -> None:
    """Publish messages with these ids and reject each from the work queue: real dead letters."""
    connection = await aio_pika.connect(url, login="guest", password="guest")
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(events)
        for i, message_id in enumerate(ids):
            await exchange.publish(
                aio_pika.Message(f'{{"order": "{message_id}"}}'.encode(), message_id=message_id),
                routing_key=f"order.{i}.created",
            )
        queue = await channel.get_queue(work)
        for _ in ids:
            message = None
            deadline = time.monotonic() + 30
            while message is None and time.monotonic() < deadline:
                message = await queue.get(fail=False)
            assert message is not None, "a published message never reached the work queue"
            await message.reject(requeue=False)


async def message_ids(url: str, queue: str) -> list[str]:
    """Take every message of ``queue`` on the node at ``url``: their message ids, sorted."""
    connection = await aio_pika.connect(url, login="guest", password="guest")
    found: list[str] = []
    async with connection:
        channel = await connection.channel()
        declared = await channel.get_queue(queue)
        while True:
            message = await declared.get(no_ack=True, fail=False, timeout=10)
            if message is None:
                break
            found.append(str(message.message_id))
    return sorted(found)


def node_of_connection(name: str) -> int | None:
    """The node (1-3) holding the client connection named ``name``, if one is open."""
    for row in management("/api/connections", params={"columns": "user_provided_name,node"}):
        if row.get("user_provided_name") == name:
            return int(str(row["node"]).removeprefix("mqb-c").split("@")[0])
    return None


# -- many letters at once, for bulk requeues --------------------------------------------


def seed_letters(
    slug: str, prefix: str, count: int, *, queue: str = "", topic: str = ""
) -> list[int]:
    """``count`` pending letters of cluster ``slug`` as the capture would store them: to go
    back to ``queue`` (RabbitMQ, default exchange, message id ``<prefix>-<i>``) or to
    partition 0 of ``topic`` (Kafka, key ``<prefix>-<i>``). Their ids, in order."""
    from dashboard.core.clusters import sync_cluster_rows
    from dashboard.models import DeadLetter

    cluster = sync_cluster_rows()[slug]
    made = []
    for i in range(count):
        key = f"{prefix}-{i}"
        body = f'{{"n": {i}}}'.encode()
        common: dict[str, Any] = {
            "cluster": cluster,
            "capture_key": f"seed:{prefix}:{i}",
            "reason": "rejected",
            "fingerprint": prefix,
            "body": body,
            "body_size": len(body),
            "status": DeadLetter.Status.PENDING,
        }
        if queue:
            letter = DeadLetter(
                vhost=VHOST,
                dlq=f"{queue}.dlq",
                message_id=key,
                origin_exchange="",
                origin_routing_key=queue,
                origin_queue=queue,
                properties={"message_id": key, "delivery_mode": 2},
                headers={},
                **common,
            )
        else:
            letter = DeadLetter(
                dlq=f"{topic}-dlq",
                origin_topic=topic,
                origin_partition=0,
                origin_offset=i,
                key=key.encode(),
                headers=[],
                **common,
            )
        made.append(letter)
    return [row.pk for row in DeadLetter.objects.bulk_create(made, batch_size=1000)]


def queue_leader(queue: str) -> int:
    """The node (1-3) leading quorum queue ``queue``."""
    row = management(f"/api/queues/{quote(VHOST, safe='')}/{quote(queue, safe='')}")
    return int(str(row.get("leader") or row["node"]).removeprefix("mqb-c").split("@")[0])


def partition_leader(topic: str, partition: int = 0) -> int:
    """The broker leading a partition of ``topic``."""
    metadata = kafka_admin().list_topics(topic=topic, timeout=10)
    return int(metadata.topics[topic].partitions[partition].leader)


def topic_keys(topic: str, expect: int) -> list[str]:
    """The keys of every record of ``topic`` (at least ``expect`` of them), in offset order
    per partition; read after ``expect`` arrived until nothing more comes."""
    consumer = Consumer(
        {
            "bootstrap.servers": BOOTSTRAP,
            "group.id": f"mqb-cluster-read-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    found: list[str] = []
    try:
        consumer.subscribe([topic])

        def more() -> bool:
            for message in consumer.consume(500, 0.5):
                if message.error() is None:
                    found.append((message.key() or b"").decode())
            return len(found) >= expect

        wait_until(more, f"{expect} record(s) in {topic}")
        while batch := consumer.consume(500, 2.0):
            found += [(m.key() or b"").decode() for m in batch if m.error() is None]
        return found
    finally:
        consumer.close()


# -- Kafka dead letters on the cluster ------------------------------------------------

Record = tuple[bytes, bytes, list[tuple[str, str | bytes | None]]]


def spring_record(i: int, origin: str) -> Record:
    """A Spring-style dead letter of record ``i`` of ``origin``: (key, value, headers)."""
    return (
        f"k{i}".encode(),
        f'{{"order": {i}}}'.encode(),
        [
            ("kafka_dlt-original-topic", origin.encode()),
            ("kafka_dlt-original-partition", struct.pack(">i", 0)),
            ("kafka_dlt-original-offset", struct.pack(">q", i)),
            ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
            ("kafka_dlt-exception-message", f"order {i} failed".encode()),
        ],
    )


def produce(topic: str, records: list[Record]) -> None:
    """Produce with acks=all, every delivery report checked."""
    producer = Producer({"bootstrap.servers": BOOTSTRAP, "acks": "all", "log_level": 0})
    failed: list[str] = []

    def report(error: Any, _message: Any) -> None:
        if error is not None:
            failed.append(str(error))

    for key, value, headers in records:
        producer.produce(topic, value, key=key, headers=headers, on_delivery=report)
        producer.poll(0)
    assert producer.flush(120) == 0 and not failed, failed


def coordinator_of(group: str) -> int:
    """The broker coordinating consumer group ``group``.

    The client and the dict of futures are kept until the answer is in: with either
    dropped, confluent-kafka may never complete the future (and ``result()`` without a
    timeout waits for ever).
    """
    admin = kafka_admin()
    futures = admin.describe_consumer_groups([group], request_timeout=10)
    description = futures[group].result(timeout=30)
    return int(description.coordinator.id)
