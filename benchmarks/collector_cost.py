"""Collector cost: CPU of the real collector sampling 50,000 queues, 5,000 topics and 10,000
consumer groups every 5 s, side by side with the raw broker calls one sample needs, and how
it grew from 10,000 queues, 1,000 topics and 20 groups.

Setup for each scale (removed after it): a vhost of its own with the queues (one in ten
holding a message), one-partition topics with a prefix of their own, consumer groups
committed on up to 50 topics each (half of them 2 records behind, so lag in seconds is
probed), a temporary SQLite database and a Redis prefix of its own. The baseline scale
(10,000 queues, 1,000 topics, 20 groups of 50 topics) is measured first, then the large
one; ``--queues``, ``--topics``, ``--groups`` change the large one (``--topics 0``: no
Kafka cluster at all, the RabbitMQ side alone, at both scales), ``--no-baseline`` skips
the first.

Measured, 7 runs, medians:
- collector: ``manage.py collect --only metrics --interval 5`` (sampling only the
  benchmark's vhost and topics), CPU from /proc/<pid>/stat (utime + stime, every
  thread) over a 60 s window, as a share of one core. Its first samples (which
  write every queue's row) are left out as warm-up; the windows include the
  once-a-minute rewrite of every queue's row.
- raw calls: a process doing only the requests the collector's samples needed,
  with the responses decoded and nothing else: every 500-queue page of
  /api/queues/<vhost> (same columns, two in flight), /api/consumers/<vhost>;
  Kafka metadata, ListOffsets latest and earliest, ListGroups, DescribeGroups (100
  groups a request, of the groups listed with members: none here) and the
  read-committed end of ``__consumer_offsets`` (whose reader in the collector
  follows the commits: none here, the groups are idle); with
  ``MQB_METRICS_KAFKA_OFFSETS_LOG=0``, one OffsetFetch per group instead (made the
  collector's way: one future per request, spread over as many admin clients as it
  uses, 120 s request timeout). It does exactly
  as many RabbitMQ and Kafka samples as the collector completed in its window
  (counted from the stored heartbeats), paced the same way (each cluster every
  5 s, or back to back when slower), while the collector is paused (SIGSTOP), so
  the two never share the machine.

``vs_raw_calls`` is the collector's CPU seconds over the raw process's CPU seconds
for the same samples: what storing, snapshotting, pushing and bookkeeping cost
on top of the unavoidable calls. ``growth`` is the large scale's share over the
baseline's.

Brokers: the shared ones of ``ops/up.sh`` unless ``MQB_RABBITMQ_URL`` (AMQP with
credentials; its path is ignored), ``MQB_RABBITMQ_MANAGEMENT_URL`` and
``MQB_KAFKA_BOOTSTRAP_SERVERS`` name others, e.g. a RabbitMQ node of its own for
50,000 queues (``MQB_STATE_DIR=$PWD/var/scale MQB_RABBITMQ_PORT=5691
MQB_RABBITMQ_MGMT_PORT=15691 MQB_RABBITMQ_PROMETHEUS_PORT=15693
MQB_RABBITMQ_NODENAME=mqb-scale@localhost ops/rabbitmq.sh up``). With
``MQB_RABBITMQ_PROMETHEUS_URL`` (that node's ``rabbitmq_prometheus``, e.g.
``http://127.0.0.1:15693``) the collector samples the queues from it
(``prometheus_url``), and the raw calls are the same Prometheus request.
``BENCH_RUNS`` and ``BENCH_WINDOW`` change the number of runs (7) and their window (60 s).

Prints ``RESULT collector_cpu_share=<n> vs_raw_calls=<collector / raw> growth=<large /
baseline, or skipped>``.
Run: ``.venv/bin/python benchmarks/collector_cost.py`` (tens of minutes; creating
50,000 queues alone takes minutes).
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MGMT = os.environ.get("MQB_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672").rstrip("/")
AMQP = os.environ.get("MQB_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
PROMETHEUS = os.environ.get("MQB_RABBITMQ_PROMETHEUS_URL", "").rstrip("/")
KAFKA = os.environ.get("MQB_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
TOPICS_PER_GROUP = 50
REQUEST_TIMEOUT = 120.0
"""the raw calls' admin request timeout: thousands of group requests at once are slow"""
INTERVAL = 5.0
RUNS = int(os.environ.get("BENCH_RUNS", "7"))
COLLECTOR_WINDOW = float(os.environ.get("BENCH_WINDOW", "60"))
# The collector reads committed offsets from __consumer_offsets unless this is 0: the raw
# reference then makes the requests a sample still needs (no OffsetFetch per group).
OFFSETS_LOG = os.environ.get("MQB_METRICS_KAFKA_OFFSETS_LOG", "1") not in ("0", "false", "no")
PROMETHEUS_FAMILIES = (
    "queue_coarse_metrics",
    "queue_consumer_count",
    "channel_queue_metrics",
    "channel_queue_exchange_metrics",
)


@dataclass(frozen=True)
class Scale:
    queues: int
    topics: int
    groups: int

    def __str__(self) -> str:
        return f"{self.queues} queues, {self.topics} topics, {self.groups} groups"

    def group_topics(self, names: list[str], group: int) -> list[str]:
        """The topics group ``group`` commits on (groups share topics when there are few)."""
        per = min(TOPICS_PER_GROUP, len(names))
        start = (group * per) % max(1, len(names) - per + 1)
        return names[start : start + per]


BASELINE = Scale(10_000, 1_000, 20)
LARGE = Scale(50_000, 5_000, 10_000)


def amqp_url(vhost: str) -> str:
    """``AMQP`` with ``vhost`` as its path."""
    parts = urlsplit(AMQP)
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(vhost, safe=""), parts.query, ""))


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


def create_queues(vhost: str, count: int) -> None:
    """``count`` queues in one definitions import, then a message into every tenth."""
    with httpx.Client(base_url=MGMT, auth=("guest", "guest"), timeout=600) as http:
        queues = [
            {"name": f"bench-q{i:05d}", "vhost": vhost, "durable": False, "auto_delete": False,
             "arguments": {}}
            for i in range(count)
        ]  # fmt: skip
        http.post(
            f"/api/definitions/{quote(vhost, safe='')}", json={"queues": queues}
        ).raise_for_status()
    asyncio.run(fill_queues(vhost, count))


async def fill_queues(vhost: str, count: int) -> None:
    import aio_pika

    connection = await aio_pika.connect(amqp_url(vhost))
    try:
        channel = await connection.channel(publisher_confirms=True)
        for start in range(0, count, 1000):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(b"waiting"), routing_key=f"bench-q{i:05d}"
                    )
                    for i in range(start, min(count, start + 1000), 10)
                )
            )
    finally:
        await connection.close()


def kafka_admin() -> Any:
    from confluent_kafka.admin import AdminClient

    # librdkafka gives up on a request after socket.timeout.ms (60 s) whatever its own timeout.
    timeout_ms = int(REQUEST_TIMEOUT * 1000)
    return AdminClient({"bootstrap.servers": KAFKA, "socket.timeout.ms": timeout_ms})


def create_topics(admin: Any, prefix: str, scale: Scale) -> list[str]:
    from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    names = [f"{prefix}t{i:05d}" for i in range(scale.topics)]
    for start in range(0, scale.topics, 100):
        futures = admin.create_topics(
            [NewTopic(n, 1, 1) for n in names[start : start + 100]], request_timeout=30
        )
        for future in futures.values():
            future.result(timeout=60)
    time.sleep(2)  # let metadata settle before producing
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 5})
    for name in names[: scale.groups * TOPICS_PER_GROUP]:
        for _ in range(4):
            producer.produce(name, b"record")
            producer.poll(0)
    producer.flush(60)
    for g in range(scale.groups):
        group = f"{prefix}g{g:05d}"
        mine = scale.group_topics(names, g)
        offset = 2 if g % 2 else 4  # odd groups lag by two records
        partitions = [TopicPartition(n, 0, offset) for n in mine]
        request = [ConsumerGroupTopicPartitions(group, partitions)]
        admin.alter_consumer_group_offsets(request, request_timeout=30)[group].result(timeout=60)
    return names


def cleanup(vhost: str, prefix: str, admin: Any, scale: Scale) -> None:
    with httpx.Client(base_url=MGMT, auth=("guest", "guest"), timeout=300) as http:
        # Again until it is gone: RabbitMQ drops a request after 60 s, and deleting
        # 50,000 queues can take longer (each attempt deletes some).
        for _ in range(20):
            with contextlib.suppress(httpx.HTTPError):
                http.delete(f"/api/vhosts/{quote(vhost, safe='')}")
                if http.get(f"/api/vhosts/{quote(vhost, safe='')}").status_code == 404:
                    break
            time.sleep(2)
    if not scale.topics:
        return
    groups = [f"{prefix}g{g:05d}" for g in range(scale.groups)]
    for start in range(0, len(groups), 500):
        chunk = groups[start : start + 500]
        for future in admin.delete_consumer_groups(chunk, request_timeout=30).values():
            with contextlib.suppress(Exception):
                future.result(timeout=60)
    names = [f"{prefix}t{i:05d}" for i in range(scale.topics)]
    for start in range(0, scale.topics, 200):
        futures = admin.delete_topics(names[start : start + 200], request_timeout=60)
        for future in futures.values():
            with contextlib.suppress(Exception):
                future.result(timeout=120)


# -- the reference: raw calls only ---------------------------------------------------------


def raw_samplers(http: httpx.AsyncClient, admin: Any, vhost: str, prefix: str) -> dict[str, Any]:
    """One sample's worth of broker calls per cluster, responses decoded; each returns
    its call count."""
    from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

    sys.path.insert(0, str(ROOT))
    from brokers.kafka import bulk

    helpers: list[Any] = []

    path = f"/api/queues/{quote(vhost, safe='')}"
    scrape = [("family", f) for f in PROMETHEUS_FAMILIES] + [("vhost", vhost)]

    def params(page: int) -> dict[str, str]:
        return {"page": str(page), "page_size": "500", "columns": COLUMNS}

    async def rabbit() -> int:
        if PROMETHEUS:
            text = (await http.get(PROMETHEUS + "/metrics/detailed", params=tuple(scrape))).text
            # Decoded: every sample line split into its name, labels and value.
            lines = [line.rpartition(" ") for line in text.splitlines() if line[:1] != "#"]
            assert lines
            (await http.get(f"/api/consumers/{quote(vhost, safe='')}")).json()
            return 2
        first = (await http.get(path, params=params(1))).json()
        limit = asyncio.Semaphore(2)

        async def page(n: int) -> Any:
            async with limit:
                return (await http.get(path, params=params(n))).json()

        await asyncio.gather(*(page(n) for n in range(2, first["page_count"] + 1)))
        (await http.get(f"/api/consumers/{quote(vhost, safe='')}")).json()
        return int(first["page_count"]) + 1

    async def kafka() -> int:
        # The same requests as the collector's, made the same lean way: one future per
        # request (brokers.kafka.bulk), ListOffsets in calls of 500 partitions, group
        # calls spread over as many admin clients as the sampler uses (one more per
        # 1,000 groups, 4 at most).
        loop = asyncio.get_running_loop()
        metadata = await loop.run_in_executor(None, lambda: admin.list_topics(timeout=10))
        parts = [
            (t, p)
            for t, meta in metadata.topics.items()
            if t.startswith(prefix)
            for p in meta.partitions
        ]
        futures = [
            bulk.list_offsets(admin, parts[i : i + 500], spec, REQUEST_TIMEOUT)
            for spec in (OffsetSpec.latest(), OffsetSpec.earliest())  # type: ignore[no-untyped-call]
            for i in range(0, len(parts), 500)
        ]
        listing = await asyncio.wrap_future(
            admin.list_consumer_groups(request_timeout=REQUEST_TIMEOUT)
        )
        ids = [g.group_id for g in listing.valid]
        # As the collector: a group listed as Empty or Dead has no member to describe.
        with_members = [
            g.group_id
            for g in listing.valid
            if getattr(g.state, "name", "") not in ("EMPTY", "DEAD")
        ]
        describes = -(-len(with_members) // 100)
        requests = describes if OFFSETS_LOG else len(ids)
        clients = min(4, -(-requests // 1000))
        while len(helpers) < clients - 1:
            helpers.append(kafka_admin())
        admins = [admin, *helpers[: max(0, clients - 1)]]
        for n, start in enumerate(range(0, len(with_members), 100)):
            batch = with_members[start : start + 100]
            futures.append(bulk.describe_groups(admins[n % len(admins)], batch, REQUEST_TIMEOUT))
        if OFFSETS_LOG:
            # The offsets log's end (its reader's records are the commits, none here).
            log = [
                ("__consumer_offsets", p) for p in metadata.topics["__consumer_offsets"].partitions
            ]
            futures.append(
                bulk.list_offsets(
                    admin,
                    log,
                    OffsetSpec.latest(),  # type: ignore[no-untyped-call]
                    REQUEST_TIMEOUT,
                    read_committed=True,
                )
            )
        else:
            for n, gid in enumerate(ids):
                futures.append(bulk.group_offsets(admins[n % len(admins)], gid, REQUEST_TIMEOUT))
        await asyncio.gather(*(asyncio.wrap_future(f) for f in futures))
        return 3 + 2 + describes + (1 if OFFSETS_LOG else len(ids))

    return {"rabbit": rabbit, "kafka": kafka}


async def reference(vhost: str, prefix: str, counts: dict[str, int]) -> None:
    """``counts[cluster]`` samples of each cluster, each cluster on its own 5 s pace."""
    admin = kafka_admin()
    async with httpx.AsyncClient(base_url=MGMT, auth=("guest", "guest"), timeout=120) as http:
        samplers = raw_samplers(http, admin, vhost, prefix)
        for name in counts:
            await samplers[name]()  # warm: connections, metadata
        print("ready", flush=True)
        calls = 0

        async def loop(name: str) -> None:
            nonlocal calls
            for _ in range(counts[name]):
                started = time.monotonic()
                calls += await samplers[name]()
                await asyncio.sleep(max(0.0, INTERVAL - (time.monotonic() - started)))

        await asyncio.gather(*(loop(name) for name in counts))
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


def collector_env(tmp: Path, vhost: str, prefix: str, run_id: str, scale: Scale) -> dict[str, str]:
    clusters = tmp / "clusters.toml"
    where = urlsplit(AMQP).netloc.rpartition("@")[2]
    text = f"""
[[cluster]]
slug = "bench-rabbit"
kind = "rabbitmq"
amqp_url = "amqp://{where}/{quote(vhost, safe="")}"
management_url = "{MGMT}"
username = "guest"
password_env = "BENCH_RABBIT_PASSWORD"
timeout = 60
"""
    if PROMETHEUS:
        text += f'prometheus_url = "{PROMETHEUS}"\n'
    if scale.topics:
        text += f"""
[[cluster]]
slug = "bench-kafka"
kind = "kafka"
bootstrap_servers = "{KAFKA}"
timeout = 10
"""
    clusters.write_text(text)
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


def wait_for_samples(
    env: dict[str, str], count: int, process: subprocess.Popen[bytes], slugs: list[str]
) -> None:
    """Until every cluster has been sampled ``count`` more times (by sample time)."""
    seen: dict[str, list[float]] = {slug: [] for slug in slugs}
    deadline = time.monotonic() + 900
    while any(len(set(times)) < count for times in seen.values()):
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the collector stopped or never sampled; see its log")
        for slug, times in seen.items():
            status = last_status(env, slug)
            if status.get("ok") and status.get("sampled_at"):
                times.append(status["sampled_at"])
        time.sleep(0.5)


def measure(scale: Scale) -> tuple[float, float]:
    """(median share of a core, median collector/raw) of the collector at ``scale``."""
    run_id = uuid.uuid4().hex[:8]
    vhost, prefix = f"mqb-bench-metrics-{run_id}", f"mqb-bench-metrics-{run_id}-"
    admin = kafka_admin() if scale.topics else None
    tmp = Path(tempfile.mkdtemp(prefix="mqb-bench-metrics-"))
    print(f"setting up: vhost {vhost}, {scale}", flush=True)
    collector: subprocess.Popen[bytes] | None = None
    slugs = ["bench-rabbit", *(["bench-kafka"] if scale.topics else [])]
    try:
        with httpx.Client(base_url=MGMT, auth=("guest", "guest"), timeout=30) as http:
            http.put(f"/api/vhosts/{quote(vhost, safe='')}").raise_for_status()
            http.put(
                f"/api/permissions/{quote(vhost, safe='')}/guest",
                json={"configure": ".*", "write": ".*", "read": ".*"},
            ).raise_for_status()
        started = time.monotonic()
        create_queues(vhost, scale.queues)
        if admin is not None:
            create_topics(admin, prefix, scale)
        print(f"  created in {time.monotonic() - started:.0f} s", flush=True)
        env = collector_env(tmp, vhost, prefix, run_id, scale)
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
        wait_for_samples(env, 3, collector, slugs)  # warm-up: the first samples write every row
        rabbit, kafka = last_status(env, "bench-rabbit"), last_status(env, "bench-kafka")
        kafka_cost = kafka.get("cost", {})
        print(
            f"collector: RabbitMQ sample {rabbit.get('seconds', 0):.2f} s"
            f" ({rabbit.get('cost', {}).get('pages')} requests for the queues)"
            + (
                f", Kafka sample {kafka.get('seconds', 0):.2f} s"
                f" ({kafka_cost.get('topics')} topics, {kafka_cost.get('groups')} groups,"
                f" offsets from {kafka_cost.get('offsets_from')})"
                if scale.topics
                else ""
            ),
            flush=True,
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
            counts = {k: after[k] - before[k] for k in after if f"bench-{k}" in slugs}
            collector.send_signal(signal.SIGSTOP)
            try:
                raw, raw_wall = measure_reference(vhost, prefix, counts)
            finally:
                collector.send_signal(signal.SIGCONT)
            kafka_now = last_status(env, "bench-kafka") if scale.topics else {}
            shares.append(used / elapsed)
            ratios.append(used / raw if raw else float("inf"))
            print(
                f"{run:>3}  {counts['rabbit']:>9},{counts.get('kafka', 0):<11}  {used:>15.2f}"
                f"  {shares[-1]:>15.4f}  {raw:>9.2f}  ({raw_wall:>10.0f})  {ratios[-1]:>13.2f}"
                + (
                    f"  last Kafka sample {kafka_now.get('seconds', 0):.2f} s, offsets from"
                    f" {kafka_now.get('cost', {}).get('offsets_from')},"
                    f" phases {kafka_now.get('cost', {}).get('phases')}"
                    if kafka_now
                    else ""
                ),
                flush=True,
            )
        share, ratio = statistics.median(shares), statistics.median(ratios)
        print(
            f"{scale}: medians over {RUNS} runs: collector {share:.4f} of a core;"
            f" collector/raw {ratio:.2f} (collector = the real `manage.py collect` process,"
            " including its SQLite writes, Redis snapshot and pushes; raw = the same samples'"
            " broker calls alone)",
            flush=True,
        )
        return share, ratio
    finally:
        if collector is not None:
            collector.send_signal(signal.SIGCONT)
            collector.terminate()
            try:
                collector.wait(timeout=60)
            except subprocess.TimeoutExpired:
                collector.kill()
        print("cleaning up", file=sys.stderr)
        cleanup(vhost, prefix, admin, scale)
        for path in sorted(tmp.glob("*"), reverse=True):
            with contextlib.suppress(OSError):
                path.unlink()
        with contextlib.suppress(OSError):
            tmp.rmdir()


def main(large: Scale, baseline: bool) -> None:
    base_share = None
    if baseline:
        base = BASELINE if large.topics else Scale(BASELINE.queues, 0, 0)
        base_share, _ = measure(base)
    share, ratio = measure(large)
    growth = f"{share / base_share:.2f}" if base_share else "skipped"
    print(f"RESULT collector_cpu_share={share:.4f} vs_raw_calls={ratio:.2f} growth={growth}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", nargs=3, metavar=("VHOST", "PREFIX", "COUNTS"))
    parser.add_argument("--quick", action="store_true", help="a small smoke run, not a result")
    parser.add_argument("--queues", type=int, default=LARGE.queues)
    parser.add_argument("--topics", type=int, default=LARGE.topics, help="0: no Kafka")
    parser.add_argument("--groups", type=int, default=LARGE.groups)
    parser.add_argument(
        "--no-baseline", action="store_true", help="no growth: the large scale only"
    )
    args = parser.parse_args()
    large = Scale(args.queues, args.topics, args.groups if args.topics else 0)
    if args.quick:
        BASELINE = Scale(500, 50, 2)
        large = Scale(1000, 100, 4) if args.topics else Scale(1000, 0, 0)
        TOPICS_PER_GROUP, RUNS, COLLECTOR_WINDOW = 10, 1, 15.0
    if args.reference:
        vhost, prefix, counts = args.reference
        asyncio.run(reference(vhost, prefix, json.loads(counts)))
    else:
        main(large, not args.no_baseline)
