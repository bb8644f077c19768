"""Collector cost: CPU of the real collector sampling 10,000 queues and 1,000 topics every 5 s,
side by side with the raw broker calls one sample needs.

Setup (removed at the end): a vhost of its own with 10,000 queues (1,000 holding a
message), 1,000 one-partition topics with a prefix of their own, 20 consumer groups
committed on 50 topics each (half of them 2 records behind, so lag in seconds is
probed), a temporary SQLite database and a Redis prefix of its own.

Measured, 7 runs, medians:
- collector: ``manage.py collect --only metrics --interval 5`` (sampling only the
  benchmark's vhost and topics), CPU from /proc/<pid>/stat (utime + stime, every
  thread) over a 60 s window, as a share of one core. Its first samples (which
  write every queue's row) are left out as warm-up; the windows include the
  once-a-minute rewrite of every queue's row.
- raw calls: a process doing only the requests the collector's samples needed,
  with the responses decoded and nothing else: every 500-queue page of
  /api/queues/<vhost> (same columns, two in flight), /api/consumers/<vhost>;
  Kafka metadata, ListOffsets latest and earliest, ListGroups, DescribeGroups, one
  OffsetFetch per group. It does exactly as many RabbitMQ and Kafka samples as the
  collector completed in its window (counted from the stored heartbeats), paced
  the same way (each cluster every 5 s, or back to back when slower), while the
  collector is paused (SIGSTOP), so the two never share the machine.

``vs_raw_calls`` is the collector's CPU seconds over the raw process's CPU seconds
for the same samples: what storing, snapshotting, pushing and bookkeeping cost
on top of the unavoidable calls.

Prints ``RESULT collector_cpu_share=<n> vs_raw_calls=<collector / raw>``.
Run: ``.venv/bin/python benchmarks/collector_cost.py`` (about 12 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MGMT = "http://127.0.0.1:15672"
AMQP = "amqp://guest:guest@127.0.0.1:5672/"
KAFKA = "127.0.0.1:9092"
QUEUES, TOPICS, GROUPS, TOPICS_PER_GROUP = 10_000, 1_000, 20, 50
INTERVAL = 5.0
RUNS, COLLECTOR_WINDOW = 7, 60.0
COLUMNS = (
    "name,vhost,messages,messages_ready,messages_unacknowledged,consumers,"
    "message_stats.publish_details.rate,message_stats.deliver_get_details.rate,"
    "message_stats.ack_details.rate"
)
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of ``pid``, from /proc (psutil is not installed)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


# -- setup and cleanup ----------------------------------------------------------------


async def create_queues(vhost: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(AMQP + quote(vhost, safe=""))
    try:
        channels = [await connection.channel() for _ in range(8)]

        async def declare(worker: int) -> None:
            channel = channels[worker]
            for i in range(worker, QUEUES, len(channels)):
                queue = await channel.declare_queue(f"bench-q{i:05d}", auto_delete=False)
                if i % 10 == 0:
                    await channel.default_exchange.publish(
                        aio_pika.Message(b"waiting"), routing_key=queue.name
                    )

        await asyncio.gather(*(declare(w) for w in range(len(channels))))
    finally:
        await connection.close()


def kafka_admin() -> Any:
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": KAFKA})


def create_topics(admin: Any, prefix: str) -> list[str]:
    from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    names = [f"{prefix}t{i:04d}" for i in range(TOPICS)]
    for start in range(0, TOPICS, 100):
        futures = admin.create_topics(
            [NewTopic(n, 1, 1) for n in names[start : start + 100]], request_timeout=30
        )
        for future in futures.values():
            future.result(timeout=60)
    time.sleep(2)  # let metadata settle before producing
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 5})
    for name in names[: GROUPS * TOPICS_PER_GROUP]:
        for _ in range(4):
            producer.produce(name, b"record")
    producer.flush(60)
    for g in range(GROUPS):
        group = f"{prefix}g{g:02d}"
        mine = names[g * TOPICS_PER_GROUP : (g + 1) * TOPICS_PER_GROUP]
        offset = 2 if g % 2 else 4  # odd groups lag by two records
        partitions = [TopicPartition(n, 0, offset) for n in mine]
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        admin.alter_consumer_group_offsets(request, request_timeout=30)[group].result(timeout=60)
    return names


def cleanup(vhost: str, prefix: str, admin: Any) -> None:
    with httpx.Client(base_url=MGMT, auth=("guest", "guest"), timeout=120) as http:
        http.delete(f"/api/vhosts/{quote(vhost, safe='')}")
    groups = [f"{prefix}g{g:02d}" for g in range(GROUPS)]
    for future in admin.delete_consumer_groups(groups, request_timeout=30).values():
        with contextlib.suppress(Exception):
            future.result(timeout=60)
    names = [f"{prefix}t{i:04d}" for i in range(TOPICS)]
    for start in range(0, TOPICS, 200):
        futures = admin.delete_topics(names[start : start + 200], request_timeout=60)
        for future in futures.values():
            with contextlib.suppress(Exception):
                future.result(timeout=120)


# -- the reference: raw calls only ---------------------------------------------------------


def raw_samplers(http: httpx.AsyncClient, admin: Any, vhost: str, prefix: str) -> dict[str, Any]:
    """One sample's worth of broker calls per cluster, responses decoded; each returns
    its call count."""
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    path = f"/api/queues/{quote(vhost, safe='')}"

    def params(page: int) -> dict[str, str]:
        return {"page": str(page), "page_size": "500", "columns": COLUMNS}

    async def rabbit() -> int:
        first = (await http.get(path, params=params(1))).json()
        limit = asyncio.Semaphore(2)

        async def page(n: int) -> Any:
            async with limit:
                return (await http.get(path, params=params(n))).json()

        await asyncio.gather(*(page(n) for n in range(2, first["page_count"] + 1)))
        (await http.get(f"/api/consumers/{quote(vhost, safe='')}")).json()
        return int(first["page_count"]) + 1

    async def kafka() -> int:
        loop = asyncio.get_running_loop()
        metadata = await loop.run_in_executor(None, lambda: admin.list_topics(timeout=10))
        parts = [
            TopicPartition(t, p)
            for t, meta in metadata.topics.items()
            if t.startswith(prefix)
            for p in meta.partitions
        ]
        offsets = []
        for spec in (OffsetSpec.latest(), OffsetSpec.earliest()):  # type: ignore[no-untyped-call]
            offsets += list(admin.list_offsets({tp: spec for tp in parts}).values())
        listing = await asyncio.wrap_future(admin.list_consumer_groups())
        ids = [g.group_id for g in listing.valid]
        futures = list(offsets)
        for start in range(0, len(ids), 100):
            futures += list(admin.describe_consumer_groups(ids[start : start + 100]).values())
        for gid in ids:
            futures += list(
                admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(gid)]).values()
            )
        await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        return 3 + 2 + len(ids) + -(-len(ids) // 100)

    return {"rabbit": rabbit, "kafka": kafka}


async def reference(vhost: str, prefix: str, counts: dict[str, int]) -> None:
    """``counts[cluster]`` samples of each cluster, each cluster on its own 5 s pace."""
    admin = kafka_admin()
    async with httpx.AsyncClient(base_url=MGMT, auth=("guest", "guest"), timeout=30) as http:
        samplers = raw_samplers(http, admin, vhost, prefix)
        for sample in samplers.values():
            await sample()  # warm: connections, metadata
        print("ready", flush=True)
        calls = 0

        async def loop(name: str) -> None:
            nonlocal calls
            for _ in range(counts[name]):
                started = time.monotonic()
                calls += await samplers[name]()
                await asyncio.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))

        await asyncio.gather(loop("rabbit"), loop("kafka"))
        print(json.dumps({"calls": calls}), flush=True)
    sys.stdin.readline()  # stay alive until the parent has read /proc


def measure_reference(vhost: str, prefix: str, counts: dict[str, int]) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of the raw calls for ``counts`` samples."""
    process = subprocess.Popen(
        [PYTHON, __file__, "--reference", vhost, prefix, json.dumps(counts)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    assert process.stdout.readline().strip() == "ready"
    started, cpu0 = time.monotonic(), cpu_seconds(process.pid)
    json.loads(process.stdout.readline())
    cpu1, elapsed = cpu_seconds(process.pid), time.monotonic() - started
    process.stdin.close()
    process.wait(timeout=30)
    return cpu1 - cpu0, elapsed


# -- the collector ------------------------------------------------------------------------


def collector_env(tmp: Path, vhost: str, prefix: str, run_id: str) -> dict[str, str]:
    clusters = tmp / "clusters.toml"
    clusters.write_text(
        f"""
[[cluster]]
slug = "bench-rabbit"
kind = "rabbitmq"
amqp_url = "amqp://127.0.0.1:5672/{quote(vhost, safe="")}"
management_url = "{MGMT}"
username = "guest"
password_env = "BENCH_RABBIT_PASSWORD"
timeout = 10

[[cluster]]
slug = "bench-kafka"
kind = "kafka"
bootstrap_servers = "{KAFKA}"
timeout = 10
"""
    )
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        DATABASE_URL=f"sqlite:///{tmp / 'db.sqlite3'}",
        MQB_STATE_DIR=str(tmp),
        MQB_CLUSTERS_FILE=str(clusters),
        BENCH_RABBIT_PASSWORD="guest",
        MQB_CHANNEL_PREFIX=f"mqb-bench-metrics-{run_id}",
        MQB_METRICS_RABBITMQ_VHOSTS=vhost,
        MQB_METRICS_KAFKA_TOPICS=f"^{prefix}",
        MQB_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


def heartbeats(tmp: Path) -> dict[str, int]:
    """Samples the collector stored so far, per cluster (read-only, from its database)."""
    with contextlib.closing(sqlite3.connect(f"file:{tmp / 'db.sqlite3'}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT entity, COUNT(*) FROM dashboard_throughputsample WHERE entity_type = 'cluster'"
            " AND resolution = 'raw' GROUP BY entity"
        ).fetchall()
    found = dict(rows)
    return {"rabbit": found.get("bench-rabbit", 0), "kafka": found.get("bench-kafka", 0)}


def last_status(env: dict[str, str], slug: str) -> dict[str, Any]:
    import redis

    client = redis.Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    raw = client.get(f"{env['MQB_CHANNEL_PREFIX']}:metrics:status:{slug}")
    return json.loads(raw) if raw else {}


def wait_for_samples(env: dict[str, str], count: int, process: subprocess.Popen[bytes]) -> None:
    """Until both clusters have been sampled ``count`` more times (by sample time)."""
    seen: dict[str, list[float]] = {"bench-rabbit": [], "bench-kafka": []}
    deadline = time.monotonic() + 600
    while any(len(set(times)) < count for times in seen.values()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the collector stopped or never sampled; see its log")
        for slug, times in seen.items():
            status = last_status(env, slug)
            if status.get("ok") and status.get("sampled_at"):
                times.append(status["sampled_at"])
        time.sleep(0.5)


def main() -> None:
    run_id = uuid.uuid4().hex[:8]
    vhost, prefix = f"mqb-bench-metrics-{run_id}", f"mqb-bench-metrics-{run_id}-"
    admin = kafka_admin()
    tmp = Path(tempfile.mkdtemp(prefix="mqb-bench-metrics-"))
    print(f"setting up: vhost {vhost}, {QUEUES} queues, {TOPICS} topics, {GROUPS} groups")
    collector: subprocess.Popen[bytes] | None = None
    try:
        with httpx.Client(base_url=MGMT, auth=("guest", "guest"), timeout=30) as http:
            http.put(f"/api/vhosts/{quote(vhost, safe='')}").raise_for_status()
            http.put(
                f"/api/permissions/{quote(vhost, safe='')}/guest",
                json={"configure": ".*", "write": ".*", "read": ".*"},
            ).raise_for_status()
        started = time.monotonic()
        asyncio.run(create_queues(vhost))
        create_topics(admin, prefix)
        print(f"  created in {time.monotonic() - started:.0f} s")
        env = collector_env(tmp, vhost, prefix, run_id)
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
        )
        log = open(tmp / "collector.log", "wb")  # noqa: SIM115
        collector = subprocess.Popen(
            [PYTHON, "manage.py", "collect", "--only", "metrics", "--interval", str(INTERVAL)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_for_samples(env, 3, collector)  # warm-up: the first samples write every row
        rabbit, kafka = last_status(env, "bench-rabbit"), last_status(env, "bench-kafka")
        print(
            f"collector: RabbitMQ sample {rabbit.get('seconds', 0):.2f} s"
            f" ({rabbit.get('cost', {}).get('pages')} pages of 500),"
            f" Kafka sample {kafka.get('seconds', 0):.2f} s"
            f" ({kafka.get('cost', {}).get('topics')} topics,"
            f" {kafka.get('cost', {}).get('groups')} groups)"
        )
        shares, ratios = [], []
        print(
            "run  samples(rabbit,kafka)  collector cpu-s  share of a core  raw cpu-s"
            "  (raw wall s)  collector/raw"
        )
        for run in range(1, RUNS + 1):
            before, cpu0, t0 = heartbeats(tmp), cpu_seconds(collector.pid), time.monotonic()
            time.sleep(COLLECTOR_WINDOW)
            used, elapsed = cpu_seconds(collector.pid) - cpu0, time.monotonic() - t0
            after = heartbeats(tmp)
            counts = {k: after[k] - before[k] for k in after}
            collector.send_signal(signal.SIGSTOP)
            try:
                raw, raw_wall = measure_reference(vhost, prefix, counts)
            finally:
                collector.send_signal(signal.SIGCONT)
            shares.append(used / elapsed)
            ratios.append(used / raw if raw else float("inf"))
            print(
                f"{run:>3}  {counts['rabbit']:>9},{counts['kafka']:<11}  {used:>15.2f}"
                f"  {shares[-1]:>15.4f}  {raw:>9.2f}  ({raw_wall:>10.0f})  {ratios[-1]:>13.2f}",
                flush=True,
            )
        share, ratio = statistics.median(shares), statistics.median(ratios)
        print(
            f"medians over {RUNS} runs: collector {share:.4f} of a core; collector/raw {ratio:.2f}"
            " (collector = the real `manage.py collect` process, including its SQLite writes,"
            " Redis snapshot and pushes; raw = the same samples' broker calls alone)"
        )
        print(f"RESULT collector_cpu_share={share:.4f} vs_raw_calls={ratio:.2f}")
    finally:
        if collector is not None:
            collector.send_signal(signal.SIGCONT)
            collector.terminate()
            try:
                collector.wait(timeout=60)
            except subprocess.TimeoutExpired:
                collector.kill()
        print("cleaning up", file=sys.stderr)
        cleanup(vhost, prefix, admin)
        for path in sorted(tmp.glob("*"), reverse=True):
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            tmp.rmdir()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", nargs=3, metavar=("VHOST", "PREFIX", "COUNTS"))
    parser.add_argument("--quick", action="store_true", help="a small smoke run, not a result")
    args = parser.parse_args()
    if args.quick:
        QUEUES, TOPICS, GROUPS, TOPICS_PER_GROUP = 1000, 100, 2, 10
        RUNS, COLLECTOR_WINDOW = 1, 15.0
    if args.reference:
        vhost, prefix, counts = args.reference
        asyncio.run(reference(vhost, prefix, json.loads(counts)))
    else:
        main()
