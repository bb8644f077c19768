"""Requeue 100,000 captured dead letters per broker: the dashboard's bulk job against references.

- RabbitMQ: the dashboard's bulk requeue job (rows in the database -> their
  origin queue through the default exchange, publisher confirms, mandatory)
  against RabbitMQ's dynamic shovel (inside the broker) moving the same number
  of messages of the same size from one queue to another (``ack-mode:
  on-confirm``, what the management UI's "Move messages" creates).
- Kafka: the same job (rows -> their origin topic) against a raw
  confluent-kafka loop consuming the same number of records from one topic and
  producing them to another.

The job runs in real Celery workers on the jobs queue (one job or helper at a
time each), on a scratch database of each kind, side by side in one run:
SQLite (one worker; a job there has one runner) and PostgreSQL with one worker
(``MQB_DLQ_REQUEUE_PARALLEL=1``) and with two workers sharing the job
(``=2``). Its time is the job's own, from its start to its verdict in the
database (reading, sending, settling; not the seeding). Rows are seeded before
each timed run (untimed). After each run every origin message is read back:
``lost`` is the number of letters not at their origin, ``duplicated`` the
extra copies. The ``postgres_*`` ratios are the configuration of the default
``MQB_DLQ_REQUEUE_PARALLEL``; ``two_workers_vs_one`` the lower of the two
brokers' ratios (both are printed).

Usage: .venv/bin/python benchmarks/dlq_requeue.py [--count 100000] [--runs 3] [--size 1024]
Last line: RESULT postgres_kafka_vs_raw=<ratio> postgres_rabbitmq_vs_shovel=<ratio>
two_workers_vs_one=<ratio> sqlite_kafka_vs_raw=<ratio> sqlite_rabbitmq_vs_shovel=<ratio>
rabbitmq_vs_shovel=<ratio> kafka_vs_raw=<ratio> lost=<n> duplicated=<n>
(``rabbitmq_vs_shovel`` and ``kafka_vs_raw``: PostgreSQL's, the keys of earlier runs.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KAFKA = "127.0.0.1:9092"
MGMT = "http://127.0.0.1:15672"
GUEST = ("guest", "guest")
RUN = uuid.uuid4().hex[:8]
VHOST = f"mqb-bench-requeue-{RUN}"
STATE = Path(tempfile.mkdtemp(prefix="mqb-bench-requeue-"))
QUEUE = f"mqb-bench-requeue-{RUN}"
ENV = {
    "DJANGO_SETTINGS_MODULE": "dashboard.settings",
    "MQB_STATE_DIR": str(STATE),
    "MQB_DEFAULT_CLUSTERS": "rabbitmq,kafka",
    "MQB_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
    "MQB_LOG_LEVEL": "WARNING",
    "MQB_CELERY_QUEUE": QUEUE,
}
os.environ.update(ENV)

import aio_pika  # noqa: E402
import httpx  # noqa: E402
import psycopg  # noqa: E402
from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # noqa: E402

from tests.support.move import consume_ids  # noqa: E402

ORIGIN, SHOVEL_SRC, SHOVEL_DST = "origin", "shovel-src", "shovel-dst"
TOPIC, RAW_SRC, RAW_DST = (f"mqb-bench-requeue-{RUN}-{n}" for n in ("origin", "src", "dst"))
PG_NAME = f"mqb_bench_requeue_{RUN}"


def log(line: str) -> None:
    print(line, flush=True)


# -- scratch databases and workers ---------------------------------------------


def postgres_url(name: str = "") -> str:
    url = (
        os.environ.get("MQB_BENCH_POSTGRES_URL", "") or (ROOT / "var" / "postgres.url").read_text()
    )
    url = url.strip()
    return urlunsplit(urlsplit(url)._replace(path="/" + name)) if name else url


def admin_sql(sql: str) -> None:
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(sql)


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30) as conn:
            return list(conn.execute(sql.replace("%s", "?"), params).fetchall())
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []


def migrate(url: str) -> None:
    env = {**os.environ, "DATABASE_URL": url}
    run = [sys.executable, "manage.py"]
    subprocess.run([*run, "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)


class Workers:
    """``count`` Celery workers on the jobs queue of the database at ``url``."""

    def __init__(self, url: str, count: int, parallel: int) -> None:
        self.env = {
            **os.environ,
            "DATABASE_URL": url,
            "MQB_DLQ_REQUEUE_PARALLEL": str(parallel),
        }
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs: list[Path] = []
        for i in range(count):
            log_path = STATE / f"worker-{uuid.uuid4().hex[:6]}.log"
            self.logs.append(log_path)
            with log_path.open("wb") as out:
                self.processes.append(
                    subprocess.Popen(
                        [
                            *(sys.executable, "-m", "celery", "-A", "dashboard", "worker"),
                            *("--pool=threads", "--concurrency=1", "--loglevel=INFO"),
                            *("-Q", f"{QUEUE}.jobs", "--without-mingle", "--without-gossip"),
                            *("-n", f"bench-{RUN}-{i}-{uuid.uuid4().hex[:4]}@localhost"),
                        ],
                        cwd=ROOT,
                        env=self.env,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                    )
                )
        deadline = time.monotonic() + 120
        for process, path in zip(self.processes, self.logs, strict=True):
            while b" ready." not in path.read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"a worker did not start: {path.read_text()[-2000:]}")
                time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def seed_and_run(url: str, kind: str, count: int, size: int) -> tuple[float, str]:
    """Seed ``count`` rows, start the bulk job for the workers; return (job seconds, prefix)."""
    query(url, "DELETE FROM dashboard_deadletterbody")
    query(url, "DELETE FROM dashboard_deadletter")
    prefix = uuid.uuid4().hex[:8]
    where = ["--vhost", VHOST, "--queue", ORIGIN] if kind == "rabbitmq" else ["--topic", TOPIC]
    seeded = subprocess.run(
        [
            *(sys.executable, "-m", "tests.support.requeue_seed", kind, *where),
            *("--count", str(count), "--size", str(size), "--prefix", prefix, "--start-job"),
        ],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": url},
        check=True,
        capture_output=True,
        text=True,
    )
    job_id = int(seeded.stdout.strip().splitlines()[-1])
    deadline = time.monotonic() + 3600
    while time.monotonic() < deadline:
        (row,) = query(
            url,
            "SELECT state, verdict, started_at, finished_at, result FROM dashboard_job"
            " WHERE id = %s",
            (job_id,),
        )
        if row[0] in ("done", "failed", "cancelled"):
            break
        time.sleep(0.05)
    state, verdict, started, finished, _ = row
    if state != "done" or f"{count} of {count} requeued" not in verdict:
        raise SystemExit(f"job #{job_id} ended {state}: {verdict}")
    if isinstance(started, str):  # SQLite
        from datetime import datetime

        started, finished = datetime.fromisoformat(started), datetime.fromisoformat(finished)
    return (finished - started).total_seconds(), prefix


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


CONFIGS = {
    # name: (database, workers, MQB_DLQ_REQUEUE_PARALLEL)
    "sqlite": ("sqlite", 1, 1),
    "postgres-1": ("postgres", 1, 1),
    "postgres-2": ("postgres", 2, 2),
}


def run_job(url: str, kind: str, n: int, size: int) -> tuple[float, int, int]:
    """One timed job of ``kind`` on the database at ``url``: (rate, lost, duplicated)."""
    if kind == "rabbitmq":
        seconds, prefix = seed_and_run(url, kind, n, size)
        missing, extra = asyncio.run(rabbitmq_check(n, prefix))
        return n / seconds, missing, extra
    starts = end_offsets(TOPIC)
    seconds, prefix = seed_and_run(url, kind, n, size)
    keys = read_keys(TOPIC, starts, end_offsets(TOPIC))
    expected = {f"{prefix}-{i}" for i in range(n)}
    missing = len(expected - set(keys))
    extra = sum(c - 1 for c in keys.values() if c > 1) + sum(
        c for k, c in keys.items() if k not in expected
    )
    return n / seconds, missing, extra


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=1024, help="body bytes")
    args = parser.parse_args()
    n = args.count
    urls = {"sqlite": f"sqlite:///{STATE / 'db.sqlite3'}", "postgres": postgres_url(PG_NAME)}
    admin_sql(f'CREATE DATABASE "{PG_NAME}"')
    for url in urls.values():
        migrate(url)
    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
        path = quote(VHOST, safe="")
        http.put(f"/api/vhosts/{path}").raise_for_status()
        http.put(
            f"/api/permissions/{path}/guest", json={"configure": ".*", "write": ".*", "read": ".*"}
        ).raise_for_status()
    admin = AdminClient({"bootstrap.servers": KAFKA})
    lost = duplicated = 0
    rates: dict[str, list[float]] = {"shovel": [], "raw": []}
    for name in CONFIGS:
        rates[f"{name} rabbitmq"], rates[f"{name} kafka"] = [], []
    try:
        asyncio.run(rabbitmq_prepare())
        kafka_prepare(admin)
        log(
            f"{n:,} letters of {args.size} B per job, {args.runs} runs; SQLite and PostgreSQL"
            f" scratch databases; load {os.getloadavg()[0]:.1f}"
        )
        for run in range(1, args.runs + 1):
            shovel_s = asyncio.run(rabbitmq_shovel_run(n, args.size))
            rates["shovel"].append(n / shovel_s)
            raw_s = kafka_raw_run(n, args.size)
            rates["raw"].append(n / raw_s)
            log(f"run {run}: shovel {n / shovel_s:8,.0f}/s  raw loop {n / raw_s:8,.0f}/s")
            for name, (database, count, parallel) in CONFIGS.items():
                workers = Workers(urls[database], count, parallel)
                try:
                    for kind in ("rabbitmq", "kafka"):
                        rate, missing, extra = run_job(urls[database], kind, n, args.size)
                        lost, duplicated = lost + missing, duplicated + extra
                        rates[f"{name} {kind}"].append(rate)
                        log(
                            f"run {run}: {name:10} {kind:8} job {rate:8,.0f}/s"
                            f"  lost={missing} duplicated={extra}"
                            f"  load {os.getloadavg()[0]:.1f}"
                        )
                finally:
                    workers.stop()
        med = {k: statistics.median(v) for k, v in rates.items()}
        log("medians: " + ", ".join(f"{k} {v:,.0f}/s" for k, v in med.items()))
        default = f"postgres-{2 if default_parallel() > 1 else 1}"
        two = {
            kind: med[f"postgres-2 {kind}"] / med[f"postgres-1 {kind}"]
            for kind in ("rabbitmq", "kafka")
        }
        log(
            f"two workers vs one: rabbitmq {two['rabbitmq']:.2f} kafka {two['kafka']:.2f};"
            f" postgres ratios from {default}"
        )
        pg_kafka = med[f"{default} kafka"] / med["raw"]
        pg_rabbit = med[f"{default} rabbitmq"] / med["shovel"]
        log(
            f"RESULT postgres_kafka_vs_raw={pg_kafka:.2f}"
            f" postgres_rabbitmq_vs_shovel={pg_rabbit:.2f}"
            f" two_workers_vs_one={min(two.values()):.2f}"
            f" sqlite_kafka_vs_raw={med['sqlite kafka'] / med['raw']:.2f}"
            f" sqlite_rabbitmq_vs_shovel={med['sqlite rabbitmq'] / med['shovel']:.2f}"
            f" rabbitmq_vs_shovel={pg_rabbit:.2f} kafka_vs_raw={pg_kafka:.2f}"
            f" lost={lost} duplicated={duplicated}"
        )
    finally:
        with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
            http.delete(f"/api/vhosts/{quote(VHOST, safe='')}")
        admin.delete_topics([TOPIC, RAW_SRC, RAW_DST], operation_timeout=30)
        for _ in range(5):  # a worker's connection may still be closing
            with contextlib.suppress(psycopg.Error):
                admin_sql(f'DROP DATABASE IF EXISTS "{PG_NAME}" WITH (FORCE)')
                break
            time.sleep(1)
        shutil.rmtree(STATE, ignore_errors=True)


def default_parallel() -> int:
    """The default of MQB_DLQ_REQUEUE_PARALLEL (as settings read it)."""
    import re

    text = (ROOT / "dashboard" / "settings.py").read_text()
    found = re.search(r'MQB_DLQ_REQUEUE_PARALLEL", (\d+)', text)
    return int(found.group(1)) if found else 1


if __name__ == "__main__":
    main()
