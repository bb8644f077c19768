"""The consumers page: the demo's consumers and Celery workers, and queues nobody consumes."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import pytest

from brokers.base.metrics import ClusterSample, Point, SeenConsumer, queue_entity
from brokers.kafka import KafkaBroker
from brokers.kafka.sampler import KafkaSampler
from brokers.rabbitmq import RabbitMQBroker
from brokers.rabbitmq.sampler import RabbitMQSampler
from dashboard.collector.consumers_tracking import ConsumerTracker
from dashboard.core.clusters import sync_cluster_rows
from dashboard.metrics.redis_keys import key, sync_client
from dashboard.metrics.snapshot import encode_sample
from dashboard.models import Cluster, Consumer, ThroughputSample
from tests.conftest import KAFKA, PYTHON, ROOT, python_env, stop_process
from tests.settings import RUN_ID
from tests.support.metrics import delete_groups, delete_topics

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis]


def seen(identity: str, source: str = "%2F/orders", kind: str = "amqp") -> SeenConsumer:
    return SeenConsumer(kind, identity, source, "conn 1", "10.0.0.1", {"queue": "orders"})


@pytest.fixture
def cluster(use_clusters):
    return sync_cluster_rows()["test-rabbitmq"]


def test_it_needs_a_login(client):
    assert client.get("/consumers/").status_code == 302
    assert client.get("/api/consumers").status_code == 401


def test_first_and_last_seen_and_gone(client, viewer, cluster):
    tracker = ConsumerTracker(cluster.pk)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    tracker.record([seen("a"), seen("b")], t0)
    tracker.record([seen("a")], t0 + timedelta(seconds=5))
    a, b = Consumer.objects.get(identity="a"), Consumer.objects.get(identity="b")
    assert (a.first_seen, a.last_seen, a.state) == (t0, t0 + timedelta(seconds=5), "active")
    assert (b.last_seen, b.state) == (t0, "gone")
    tracker.record([seen("a"), seen("b")], t0 + timedelta(seconds=10))
    b.refresh_from_db()
    assert (b.first_seen, b.state) == (t0, "active"), "back again: same row, first seen kept"
    # A new tracker (a restarted collector) finds the rows instead of duplicating them.
    ConsumerTracker(cluster.pk).record([seen("a")], t0 + timedelta(seconds=15))
    assert Consumer.objects.count() == 2
    client.force_login(viewer)
    gone = client.get("/api/consumers", {"state": "gone"}).json()
    assert [c["identity"] for c in gone["consumers"]] == ["b"]


def test_queues_without_a_consumer_for_too_long_are_highlighted(client, viewer, cluster, settings):
    settings.MQB_METRICS_NO_CONSUMER_SECONDS = 300
    now = datetime.now(UTC)
    ThroughputSample.objects.create(
        cluster=cluster, entity_type="cluster", entity=cluster.slug, resolution="raw",
        time=now - timedelta(hours=2),
    )  # fmt: skip
    Consumer.objects.create(
        cluster=cluster, kind="amqp", identity="left", source=queue_entity("/", "recent"),
        state="gone", first_seen=now - timedelta(hours=1), last_seen=now - timedelta(seconds=30),
    )  # fmt: skip
    points = [
        Point(
            "queue", queue_entity("/", "abandoned <b>"), (50, 50, 0, 0.0, 0.0, 0.0, 0, None, None)
        ),
        Point("queue", queue_entity("/", "recent"), (5, 5, 0, 0.0, 0.0, 0.0, 0, None, None)),
        Point("queue", queue_entity("/", "served"), (1, 1, 0, 0.0, 0.0, 0.0, 3, None, None)),
    ]
    sample = ClusterSample(
        cluster.slug, "rabbitmq", now, (56,) + (None,) * 8, tuple(points), None, 0
    )
    sync_client().set(key("latest", cluster.slug), encode_sample(sample, 5.0))
    client.force_login(viewer)
    data = client.get("/api/consumers").json()
    rows = {u["name"]: u for u in data["without_consumers"]}
    assert set(rows) == {"abandoned <b>", "recent"}
    assert (
        rows["abandoned <b>"]["highlighted"] and rows["abandoned <b>"]["last_consumer_seen"] is None
    )
    assert not rows["recent"]["highlighted"]
    html = client.get("/consumers/").content.decode()
    assert 'data-highlighted="true" data-name="abandoned &lt;b&gt;"' in html
    assert "abandoned <b>" not in html, "broker names are escaped"


# -- the real demo: Celery worker, task-queue consumers, Kafka group member ----------------


@pytest.fixture
def demo(tmp_path: Path, rabbitmq_vhost: str, unique_name: str):
    """The demo workload and the demo's Celery worker, on the test vhost with a unique prefix."""
    prefix = f"{unique_name}-"
    amqp_url = f"amqp://guest:guest@127.0.0.1:5672/{quote(rabbitmq_vhost, safe='')}"
    hostname = f"metrics-{RUN_ID}@{socket.gethostname()}"
    worker = subprocess.Popen(
        [
            PYTHON, "-m", "celery", "-A", "demo.celery_app", "worker", "--pool=solo",
            "-Q", f"{prefix}celery-tasks", "--without-mingle", "--without-gossip",
            "--hostname", hostname,
        ],
        cwd=ROOT,
        env=python_env(DEMO_AMQP_URL=amqp_url, DEMO_PREFIX=prefix),
        stdout=(tmp_path / "worker.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    workload = subprocess.Popen(
        [
            PYTHON, "-m", "demo.workload", "--amqp-url", amqp_url, "--bootstrap-servers", KAFKA,
            "--prefix", prefix, "--rate", "5", "--fail-share", "0.1",
        ],
        cwd=ROOT,
        env=python_env(),
        stdout=(tmp_path / "workload.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield prefix, hostname, tmp_path
    stop_process(workload)
    stop_process(worker)
    delete_groups(f"{prefix}user-events-processor")
    delete_topics(f"{prefix}user-events", f"{prefix}user-events-dlq")


@pytest.mark.rabbitmq
@pytest.mark.kafka
@pytest.mark.celery
async def test_it_lists_the_demos_consumers_and_celery_workers(
    client, viewer, demo, rabbitmq_config, kafka_config, rabbitmq_vhost, use_clusters
):
    prefix, hostname, logs = demo
    rows = await asyncio.to_thread(sync_cluster_rows)
    rabbit = RabbitMQBroker(rabbitmq_config)
    kafka = KafkaBroker(kafka_config)
    await kafka.connect()
    rabbit_sampler, kafka_sampler = RabbitMQSampler(rabbitmq_config), KafkaSampler(kafka_config)
    trackers = {
        "rabbitmq": ConsumerTracker(rows["test-rabbitmq"].pk),
        "kafka": ConsumerTracker(rows["test-kafka"].pk),
    }
    group = f"{prefix}user-events-processor"
    deadline = time.monotonic() + 60
    try:
        while True:
            samples = {
                "rabbitmq": await rabbit_sampler.full(rabbit, vhost=rabbitmq_vhost),
                "kafka": await kafka_sampler.full(kafka),
            }
            for kind, sample in samples.items():
                await asyncio.to_thread(trackers[kind].record, sample.consumers or (), sample.time)
            kinds = {
                c.kind
                for s in samples.values()
                for c in s.consumers or ()
                if prefix in c.source or c.identity == hostname
            }
            task_queue = queue_entity(rabbitmq_vhost, f"{prefix}task-queue")
            task_consumers = [
                c for c in samples["rabbitmq"].consumers or ()
                if c.kind == "amqp" and c.source == task_queue
            ]  # fmt: skip
            if kinds == {"amqp", "kafka", "celery"} and len(task_consumers) == 2:
                break
            if time.monotonic() > deadline:
                logs_text = "".join(p.read_text()[-1500:] for p in logs.glob("*.log"))
                pytest.fail(f"demo consumers not all seen ({kinds}); logs:\n{logs_text}")
            await asyncio.sleep(1)
    finally:
        await rabbit.close()
        await kafka.close()
        kafka_sampler.close()

    await asyncio.to_thread(client.force_login, viewer)
    response = await asyncio.to_thread(client.get, "/consumers/", {"q": prefix.rstrip("-")})
    # Names may wrap after their separators (<wbr>); read them whole.
    html = response.content.decode().replace("<wbr>", "")
    assert response.status_code == 200
    assert html.count(f"{prefix}task-queue</a>") >= 2, "both task-queue consumers"
    assert hostname in html, "the Celery worker by its hostname"
    assert f"{prefix}celery-tasks</a>" in html
    assert "group <a" in html and group in html, "the Kafka group member"
    workers = await asyncio.to_thread(
        lambda: list(Consumer.objects.filter(kind="celery").values_list("identity", "source"))
    )
    assert (hostname, queue_entity(rabbitmq_vhost, f"{prefix}celery-tasks")) in workers
    assert await asyncio.to_thread(lambda: Cluster.objects.count()) >= 2
