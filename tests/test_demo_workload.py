"""The demo workload, as `make demo` runs it, fills both brokers' dead-letter queues.

A real ``python -m demo.workload`` and a real demo Celery worker run for a few
seconds in this run's vhost, with a unique prefix for every Kafka topic and
group; then the brokers themselves (management API, a Kafka consumer) are asked
what arrived. The workload must stop cleanly on SIGTERM.
"""

from __future__ import annotations

import contextlib
import json
import signal
import struct
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.conftest import GUEST, KAFKA, MGMT, PYTHON, ROOT, python_env, stop_process
from tests.settings import RUN_ID

pytestmark = [pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.celery]

RUN_AT_LEAST = 8.0  # seconds of traffic before the first look
GIVE_UP_AFTER = 45.0
TASK = "demo.tasks.resize_image"


@pytest.fixture
def prefix(unique_name: str) -> str:
    return f"{unique_name}-"


@pytest.fixture
def amqp_url(rabbitmq_vhost: str) -> str:
    return f"amqp://guest:guest@127.0.0.1:5672/{quote(rabbitmq_vhost, safe='')}"


@pytest.fixture
def kafka_admin(kafka_config, prefix: str):
    """An admin client; the test's topics and group are deleted afterwards."""
    admin = AdminClient({"bootstrap.servers": KAFKA})
    yield admin
    topics = [f"{prefix}user-events", f"{prefix}user-events-dlq"]
    futures = [
        *admin.delete_topics(topics, operation_timeout=10).values(),
        *admin.delete_consumer_groups([f"{prefix}user-events-processor"]).values(),
    ]
    for future in futures:
        with contextlib.suppress(KafkaException):  # never created: the test failed early
            future.result(timeout=15)


def _start(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT
    )


@pytest.fixture
def celery_worker(tmp_path: Path, amqp_url: str, prefix: str):
    log = tmp_path / "demo-celery.log"
    process = _start(
        [
            PYTHON,
            "-m",
            "celery",
            "-A",
            "demo.celery_app",
            "worker",
            "--pool=solo",
            "--loglevel=INFO",
            "-Q",
            f"{prefix}celery-tasks",
            "--without-mingle",
            "--without-gossip",
            "--hostname",
            f"demo-{RUN_ID}@%h",
        ],
        log,
        python_env(DEMO_AMQP_URL=amqp_url, DEMO_PREFIX=prefix),
    )
    yield process, log
    stop_process(process)


@pytest.fixture
def workload(tmp_path: Path, amqp_url: str, prefix: str, kafka_admin, celery_worker):
    stdout, stderr = tmp_path / "workload.out", tmp_path / "workload.err"
    process = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "demo.workload",
            "--amqp-url",
            amqp_url,
            "--bootstrap-servers",
            KAFKA,
            "--prefix",
            prefix,
            "--rate",
            "30",
            "--fail-share",
            "0.3",
        ],
        cwd=ROOT,
        env=python_env(),
        stdout=stdout.open("wb"),
        stderr=stderr.open("wb"),
    )
    yield process, stdout, stderr
    stop_process(process)


# -- what the brokers say -----------------------------------------------------


def _dead_letters(http: httpx.Client, vhost: str, queue: str) -> list[dict[str, Any]]:
    """Peek (and requeue) what is in the queue; fine here, nobody else reads it."""
    response = http.post(
        f"/api/queues/{quote(vhost, safe='')}/{quote(queue, safe='')}/get",
        json={"count": 5000, "ackmode": "ack_requeue_true", "encoding": "auto", "truncate": 2000},
    )
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return list(response.json())


def _death_queues(message: dict[str, Any]) -> set[str]:
    headers = message["properties"].get("headers") or {}
    return {death["queue"] for death in headers.get("x-death", [])}


def _task_queue_consumers(http: httpx.Client, vhost: str, queue: str) -> list[dict[str, Any]]:
    response = http.get(f"/api/consumers/{quote(vhost, safe='')}")
    response.raise_for_status()
    return [c for c in response.json() if c["queue"]["name"] == queue]


def _kafka_dead_letters(topic: str, seconds: float) -> list[dict[str, Any]]:
    consumer = Consumer(
        {"bootstrap.servers": KAFKA, "group.id": f"{topic}-reader", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if metadata is None or metadata.error is not None:
            return []
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
        records: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            records.append(dict(message.headers() or {}))
        return records
    finally:
        consumer.close()


def _partitions_by_key(topic: str, seconds: float) -> dict[bytes | None, set[int | None]]:
    consumer = Consumer(
        {"bootstrap.servers": KAFKA, "group.id": f"{topic}-keys", "enable.auto.commit": False}
    )
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in metadata.partitions])
        seen: dict[bytes | None, set[int | None]] = {}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                seen.setdefault(message.key(), set()).add(message.partition())
        return seen
    finally:
        consumer.close()


def _looks_done(
    dlq: list[dict[str, Any]],
    consumers: list[dict[str, Any]],
    kafka: list[dict[str, Any]],
    prefix: str,
) -> bool:
    origins = set().union(*map(_death_queues, dlq)) if dlq else set()
    wanted = {f"{prefix}user-events", f"{prefix}task-queue", f"{prefix}celery-tasks"}
    return (
        wanted <= origins
        and len(consumers) == 2
        and any("kafka_dlt-original-topic" in h for h in kafka)
        and any("x-original-topic" in h for h in kafka)
    )


# -- the test -------------------------------------------------------------------


def test_it_fills_both_dead_letter_queues_and_stops_on_sigterm(
    workload, celery_worker, rabbitmq_vhost: str, prefix: str, kafka_admin
):
    process, stdout, stderr = workload
    worker, worker_log = celery_worker
    started = time.monotonic()
    time.sleep(RUN_AT_LEAST)

    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
        while True:
            assert process.poll() is None, stderr.read_text()
            assert worker.poll() is None, worker_log.read_text()
            dlq = _dead_letters(http, rabbitmq_vhost, f"{prefix}dlq")
            consumers = _task_queue_consumers(http, rabbitmq_vhost, f"{prefix}task-queue")
            kafka = _kafka_dead_letters(f"{prefix}user-events-dlq", seconds=2)
            if _looks_done(dlq, consumers, kafka, prefix):
                break
            if time.monotonic() - started > GIVE_UP_AFTER:
                break
            time.sleep(1)

    # SIGTERM first: what follows only reads, and the exit must be prompt.
    stopping = time.monotonic()
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0, stderr.read_text()
    assert time.monotonic() - stopping < 6
    log = stderr.read_text()
    assert "Traceback" not in log, log
    assert stdout.read_text().startswith("demo workload: rabbitmq vhost"), stdout.read_text()

    # RabbitMQ: rejects from every path dead-lettered into dlq with a real x-death.
    by_origin: dict[str, list[dict[str, Any]]] = {}
    for message in dlq:
        for queue in _death_queues(message):
            by_origin.setdefault(queue, []).append(message)
    assert set(by_origin) >= {
        f"{prefix}user-events",
        f"{prefix}task-queue",
        f"{prefix}celery-tasks",
    }, set(by_origin)
    for message in dlq:
        headers = message["properties"]["headers"]
        assert headers["x-death"][0]["reason"] == "rejected"
        assert headers["x-first-death-reason"] == "rejected"
        assert message["properties"]["delivery_mode"] == 2
    content_types = {m["properties"].get("content_type") for m in by_origin[f"{prefix}user-events"]}
    assert content_types >= {"application/json", "application/x-msgpack"}, content_types
    for message in by_origin[f"{prefix}user-events"]:
        assert message["properties"]["message_id"]
        assert message["properties"]["app_id"] == "demo-workload"
    for message in by_origin[f"{prefix}celery-tasks"]:
        headers = message["properties"]["headers"]
        assert headers["task"] == TASK
        assert headers["lang"] == "py" and headers["id"] and "argsrepr" in headers
        assert "retries" in headers
        args, kwargs, _embed = json.loads(message["payload"])
        assert args[1].startswith("s3://demo-images/") and "sizes" in kwargs

    # Two workers on task-queue, each with prefetch 1.
    assert len(consumers) == 2, consumers
    assert [c["prefetch_count"] for c in consumers] == [1, 1], consumers

    # Kafka: 6 partitions, keyed by user, and both dead-letter header conventions.
    topics = kafka_admin.list_topics(timeout=10).topics
    assert len(topics[f"{prefix}user-events"].partitions) == 6
    assert f"{prefix}user-events-dlq" in topics
    keys = _partitions_by_key(f"{prefix}user-events", seconds=3)
    assert keys and all(len(partitions) == 1 for partitions in keys.values())
    spring = [h for h in kafka if "kafka_dlt-original-topic" in h]
    plain = [h for h in kafka if "x-original-topic" in h]
    assert spring and plain, kafka[:3]
    for headers in spring:
        assert headers["kafka_dlt-original-topic"].decode() == f"{prefix}user-events"
        assert 0 <= struct.unpack(">i", headers["kafka_dlt-original-partition"])[0] < 6
        assert struct.unpack(">q", headers["kafka_dlt-original-offset"])[0] >= 0
        assert struct.unpack(">q", headers["kafka_dlt-original-timestamp"])[0] > 0
        assert headers["kafka_dlt-exception-fqcn"] and headers["kafka_dlt-exception-message"]
    for headers in plain:
        assert headers["x-original-topic"].decode() == f"{prefix}user-events"
        assert 0 <= int(headers["x-original-partition"]) < 6
        assert int(headers["x-original-offset"]) >= 0
        assert headers["x-exception"]


def test_the_demo_script_starts_the_celery_worker_on_the_prefixed_queue(
    tmp_path: Path, amqp_url: str, prefix: str
):
    """`make demo` with DEMO_PREFIX: the worker consumes the app's ``<prefix>celery-tasks``."""
    log = tmp_path / "demo-celery.log"
    env = python_env(
        DEMO_AMQP_URL=amqp_url, DEMO_PREFIX=prefix, MQB_STATE_DIR=str(tmp_path / "state")
    )
    process = _start(["scripts/demo.sh", "celery-worker"], log, env)
    try:
        deadline = time.monotonic() + GIVE_UP_AFTER
        while "ready." not in log.read_text() and process.poll() is None:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert process.poll() is None, f"the worker exited ({process.returncode}):\n{text}"
        assert f".> {prefix}celery-tasks " in text, text
        vhost = quote(amqp_url.rsplit("/", 1)[1], safe="")
        queues: list[str] = []
        while f"{prefix}celery-tasks" not in queues and time.monotonic() < deadline:  # API lags
            consumers = httpx.get(f"{MGMT}/api/consumers/{vhost}", auth=GUEST, timeout=10)
            queues = [c["queue"]["name"] for c in consumers.json()]
            time.sleep(0.5)
        assert f"{prefix}celery-tasks" in queues, queues
    finally:
        stop_process(process)
