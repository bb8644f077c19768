"""Requeue 100,000 captured dead letters per broker: the dashboard's bulk job against references.

- RabbitMQ: the dashboard's bulk requeue job (rows in the database -> their
  origin queue through the default exchange, publisher confirms, mandatory)
  against RabbitMQ's dynamic shovel (inside the broker) moving the same number
  of messages of the same size from one queue to another (``ack-mode:
  on-confirm``, what the management UI's "Move messages" creates).
- Kafka: the same job (rows -> their origin topic) against a raw
  confluent-kafka loop consuming the same number of records from one topic and
  producing them to another.

The job runs in this process (``jobs.run_job``, as the Celery worker runs it)
on its own SQLite database, so its time includes reading the rows, sending and
settling them (one transaction per batch). Rows are seeded before each timed
run (untimed). After each run every origin message is read back: ``lost`` is
the number of letters not at their origin, ``duplicated`` the extra copies.

Usage: .venv/bin/python benchmarks/dlq_requeue.py [--count 100000] [--runs 3] [--size 1024]
Last line: RESULT rabbitmq_vs_shovel=<ratio> kafka_vs_raw=<ratio> lost=<n> duplicated=<n>
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KAFKA = "127.0.0.1:9092"
MGMT = "http://127.0.0.1:15672"
GUEST = ("guest", "guest")
RUN = uuid.uuid4().hex[:8]
VHOST = f"mqb-bench-requeue-{RUN}"
STATE = Path(tempfile.mkdtemp(prefix="mqb-bench-requeue-"))
ENV = {
    "DJANGO_SETTINGS_MODULE": "dashboard.settings",
    "DATABASE_URL": f"sqlite:///{STATE / 'db.sqlite3'}",
    "MQB_STATE_DIR": str(STATE),
    "MQB_DEFAULT_CLUSTERS": "rabbitmq,kafka",
    "MQB_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
    "MQB_LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)

import aio_pika  # noqa: E402
import django  # noqa: E402
import httpx  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # noqa: E402

from tests.support.move import consume_ids  # noqa: E402

ORIGIN, SHOVEL_SRC, SHOVEL_DST = "origin", "shovel-src", "shovel-dst"
TOPIC, RAW_SRC, RAW_DST = (f"mqb-bench-requeue-{RUN}-{n}" for n in ("origin", "src", "dst"))


def log(line: str) -> None:
    print(line, flush=True)


def seed_and_run(kind: str, count: int, size: int) -> tuple[float, str]:
    """Seed ``count`` rows, run the bulk job to its end; return (seconds, prefix)."""
    from django.contrib.auth.models import Group, User

    from dashboard.deadletters import requeue_job
    from dashboard.jobs import control, runner
    from dashboard.models import DeadLetter
    from tests.support.requeue_seed import rows

    prefix = uuid.uuid4().hex[:8]
    spec = argparse.Namespace(
        vhost=VHOST, queue=ORIGIN, topic=TOPIC, count=count, size=size, prefix=prefix
    )
    made = DeadLetter.objects.bulk_create(rows(kind, spec), batch_size=2000)
    user, _ = User.objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    control.enqueue = lambda job: None  # run here, not in a worker
    job = asyncio.run(requeue_job.do_start_bulk_requeue(user=user, ids=[r.pk for r in made]))
    started = time.perf_counter()
    state = runner.run_job(job.pk, job.task_id)
    seconds = time.perf_counter() - started
    finished = control.get_job(job.pk)
    if state != "done" or finished.result.get("requeued") != count:
        raise SystemExit(f"job #{job.pk} ended {state}: {finished.verdict}")
    return seconds, prefix


# -- RabbitMQ ------------------------------------------------------------------


async def depth(amqp: aio_pika.abc.AbstractConnection, queue: str) -> int:
    channel = await amqp.channel()
    q = await channel.declare_queue(queue, passive=True)
    await channel.close()
    return int(q.declaration_result.message_count or 0)


async def fill(amqp: aio_pika.abc.AbstractConnection, queue: str, count: int, size: int) -> None:
    channel = await amqp.channel(publisher_confirms=True)
    body = b"x" * size
    for start in range(0, count, 2000):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(body, message_id=f"s-{i}", delivery_mode=2), routing_key=queue
                )
                for i in range(start, min(start + 2000, count))
            )
        )
    await channel.close()


async def shovel(amqp: aio_pika.abc.AbstractConnection, count: int) -> float:
    uri = "amqp:///" + quote(VHOST, safe="")
    value = {
        "src-protocol": "amqp091",
        "src-uri": uri,
        "src-queue": SHOVEL_SRC,
        "src-delete-after": "queue-length",
        "dest-protocol": "amqp091",
        "dest-uri": uri,
        "dest-queue": SHOVEL_DST,
        "ack-mode": "on-confirm",
    }
    name = f"move-{uuid.uuid4().hex[:8]}"
    async with httpx.AsyncClient(base_url=MGMT, auth=GUEST, timeout=10) as http:
        started = time.perf_counter()
        response = await http.put(
            f"/api/parameters/shovel/{quote(VHOST, safe='')}/{name}", json={"value": value}
        )
        response.raise_for_status()
        while await depth(amqp, SHOVEL_DST) < count:  # noqa: ASYNC110 - nothing signals "done"
            await asyncio.sleep(0.02)
        return time.perf_counter() - started


async def amqp_connect() -> aio_pika.abc.AbstractConnection:
    return await aio_pika.connect(
        f"amqp://guest:guest@127.0.0.1:5672/{quote(VHOST, safe='')}", timeout=10
    )


async def rabbitmq_prepare() -> None:
    amqp = await amqp_connect()
    channel = await amqp.channel()
    for name in (ORIGIN, SHOVEL_SRC, SHOVEL_DST):
        await channel.declare_queue(name, durable=True)
    await amqp.close()


async def rabbitmq_check(count: int, prefix: str) -> tuple[int, int]:
    amqp = await amqp_connect()
    ids = Counter(await consume_ids(amqp, ORIGIN, within=600))
    await amqp.close()
    expected = {f"{prefix}-{i}" for i in range(count)}
    lost = len(expected - set(ids))
    duplicated = sum(n - 1 for n in ids.values() if n > 1) + sum(
        n for i, n in ids.items() if i not in expected
    )
    return lost, duplicated


async def rabbitmq_shovel_run(count: int, size: int) -> float:
    amqp = await amqp_connect()
    await fill(amqp, SHOVEL_SRC, count, size)
    seconds = await shovel(amqp, count)
    channel = await amqp.channel()
    await (await channel.declare_queue(SHOVEL_DST, passive=True)).purge()
    await amqp.close()
    return seconds


# -- Kafka ---------------------------------------------------------------------


def kafka_prepare(admin: AdminClient) -> None:
    topics = [
        NewTopic(t, num_partitions=3, replication_factor=1) for t in (TOPIC, RAW_SRC, RAW_DST)
    ]
    for future in admin.create_topics(topics, operation_timeout=30).values():
        future.result()


def end_offsets(topic: str) -> list[int]:
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": f"mqb-bench-wm-{RUN}"})
    ends = [
        consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(3)
    ]
    consumer.close()
    return ends


def read_keys(topic: str, starts: list[int], ends: list[int]) -> Counter[str]:
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"mqb-bench-read-{RUN}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, starts[p]) for p in range(3)])
    keys: Counter[str] = Counter()
    want = sum(ends) - sum(starts)
    deadline = time.monotonic() + 300
    while sum(keys.values()) < want and time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=1):
            if message.error() is None:
                keys[(message.key() or b"").decode()] += 1
    consumer.close()
    return keys


def kafka_raw_run(count: int, size: int) -> float:
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 5})
    body = b"x" * size
    for i in range(count):
        while True:
            try:
                producer.produce(RAW_SRC, body, key=f"r-{i}".encode())
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(60)
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"mqb-bench-raw-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    out = Producer({"bootstrap.servers": KAFKA, "enable.idempotence": True, "linger.ms": 5})
    started = time.perf_counter()
    consumer.subscribe([RAW_SRC])
    moved = 0
    while moved < count:
        for message in consumer.consume(1000, timeout=1):
            if message.error() is not None:
                continue
            while True:
                try:
                    out.produce(
                        RAW_DST, message.value(), key=message.key(), headers=message.headers()
                    )
                    break
                except BufferError:
                    out.poll(0.05)
            moved += 1
        out.poll(0)
    out.flush(60)
    seconds = time.perf_counter() - started
    consumer.close()
    return seconds


# -- main ----------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024, help="body bytes")
    args = parser.parse_args()
    n = args.count
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, check=True
    )
    django.setup()
    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
        path = quote(VHOST, safe="")
        http.put(f"/api/vhosts/{path}").raise_for_status()
        http.put(
            f"/api/permissions/{path}/guest", json={"configure": ".*", "write": ".*", "read": ".*"}
        ).raise_for_status()
    admin = AdminClient({"bootstrap.servers": KAFKA})
    lost = duplicated = 0
    rates: dict[str, list[float]] = {"job-rabbitmq": [], "shovel": [], "job-kafka": [], "raw": []}
    try:
        asyncio.run(rabbitmq_prepare())
        kafka_prepare(admin)
        log(f"{n:,} letters of {args.size} B per run, {args.runs} runs, SQLite at {STATE}")
        for run in range(1, args.runs + 1):
            seconds, prefix = seed_and_run("rabbitmq", n, args.size)
            missing, extra = asyncio.run(rabbitmq_check(n, prefix))
            lost, duplicated = lost + missing, duplicated + extra
            rates["job-rabbitmq"].append(n / seconds)
            shovel_s = asyncio.run(rabbitmq_shovel_run(n, args.size))
            rates["shovel"].append(n / shovel_s)
            log(
                f"run {run}: rabbitmq job {n / seconds:8,.0f}/s  shovel {n / shovel_s:8,.0f}/s"
                f"  lost={missing} duplicated={extra}"
            )
            starts = end_offsets(TOPIC)
            seconds, prefix = seed_and_run("kafka", n, args.size)
            keys = read_keys(TOPIC, starts, end_offsets(TOPIC))
            expected = {f"{prefix}-{i}" for i in range(n)}
            missing = len(expected - set(keys))
            extra = sum(c - 1 for c in keys.values() if c > 1)
            lost, duplicated = lost + missing, duplicated + extra
            rates["job-kafka"].append(n / seconds)
            raw_s = kafka_raw_run(n, args.size)
            rates["raw"].append(n / raw_s)
            log(
                f"run {run}: kafka job    {n / seconds:8,.0f}/s  raw loop {n / raw_s:8,.0f}/s"
                f"  lost={missing} duplicated={extra}"
            )
        med = {k: statistics.median(v) for k, v in rates.items()}
        log(
            "medians: "
            + ", ".join(f"{k} {v:,.0f}/s" for k, v in med.items())
            + f" (min..max job-rabbitmq {min(rates['job-rabbitmq']):,.0f}.."
            f"{max(rates['job-rabbitmq']):,.0f}, job-kafka {min(rates['job-kafka']):,.0f}.."
            f"{max(rates['job-kafka']):,.0f})"
        )
        log(
            f"RESULT rabbitmq_vs_shovel={med['job-rabbitmq'] / med['shovel']:.2f}"
            f" kafka_vs_raw={med['job-kafka'] / med['raw']:.2f} lost={lost} duplicated={duplicated}"
        )
    finally:
        with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
            http.delete(f"/api/vhosts/{quote(VHOST, safe='')}")
        admin.delete_topics([TOPIC, RAW_SRC, RAW_DST], operation_timeout=30)
        shutil.rmtree(STATE, ignore_errors=True)


if __name__ == "__main__":
    main()
