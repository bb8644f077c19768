"""10,000 scheduled dead letters: how late each reaches its origin after its due time.

A real Celery worker (its dispatcher thread, under its Redis lease) on its own
SQLite database and Celery queue carries out two schedules made with
``schedule.do_schedule_requeue``, as a click makes them: the letters are
seeded first, then each schedule is made due ``START_AFTER`` seconds later
(the service writes 8,000 spread due times in about 0.2 s):

- 8,000 RabbitMQ letters spread evenly over about 20 s (backoff with factor 1);
- 2,000 Kafka letters spread with exponential backoff (gaps from 5 ms, growing
  by 1% each, capped at 10 ms: about 20 s as well).

Arrival times are read at the origins: a live consumer notes when each
RabbitMQ message id arrives; Kafka records carry their create time (set as the
dispatcher produces them, confirmed by the broker).
``late`` = arrival minus due time, per letter. ``lost`` is the number of
letters not at their origin, ``duplicated`` the extra copies.

Usage: .venv/bin/python benchmarks/dlq_schedule.py [--rabbitmq 8000] [--kafka 2000]
Last line: RESULT due_p50_s=<s> due_p99_s=<s> due_max_s=<s> sent=<n> lost=<n> duplicated=<n>
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
VHOST = f"mqb-bench-schedule-{RUN}"
STATE = Path(tempfile.mkdtemp(prefix="mqb-bench-schedule-"))
ENV = {
    "DJANGO_SETTINGS_MODULE": "dashboard.settings",
    "DATABASE_URL": f"sqlite:///{STATE / 'db.sqlite3'}",
    "MQB_STATE_DIR": str(STATE),
    "MQB_DEFAULT_CLUSTERS": "rabbitmq,kafka",
    "MQB_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
    "MQB_CELERY_QUEUE": f"mqb-bench-schedule-{RUN}",
    "MQB_LOG_LEVEL": "INFO",
}
os.environ.update(ENV)

import django  # noqa: E402
import httpx  # noqa: E402
import redis  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # noqa: E402

from tests.support.dispatch import Arrivals, kafka_arrivals  # noqa: E402

ORIGIN = "origin"
TOPIC = f"mqb-bench-schedule-{RUN}"
START_AFTER = 2.0  # seconds from a schedule's creation to its first due letter


def log(line: str) -> None:
    print(line, flush=True)


def worker() -> subprocess.Popen[bytes]:
    queue = ENV["MQB_CELERY_QUEUE"]
    out = (STATE / "worker.log").open("wb")
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "dashboard", "worker",
            "--pool=threads", "--concurrency=4",
            "-Q", f"{queue},{queue}.jobs", "--without-mingle", "--without-gossip",
            "-n", f"bench-{RUN}@%h", "--loglevel=INFO",
        ],
        cwd=ROOT, env=dict(os.environ), stdout=out, stderr=subprocess.STDOUT,
    )  # fmt: skip


def wait_for_dispatcher(process: subprocess.Popen[bytes]) -> None:
    from django.conf import settings

    from dashboard.deadletters.dispatch import lease_key

    client = redis.Redis.from_url(settings.REDIS_URL)
    deadline = time.monotonic() + 60
    while client.get(lease_key()) is None:
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"no dispatcher started; see {STATE / 'worker.log'}")
        time.sleep(0.1)
    client.close()


def seed(kind: str, count: int, prefix: str) -> list[int]:
    """Seed ``count`` captured letters; their ids."""
    from tests.support.requeue_seed import insert

    spec = argparse.Namespace(
        vhost=VHOST, queue=ORIGIN, topic=TOPIC, count=count, size=200, prefix=prefix
    )
    return insert(kind, spec)


def schedule(ids: list[int], backoff: object) -> int:
    """Schedule the letters through the service, the first due ``START_AFTER`` s from now."""
    from django.contrib.auth.models import Group, User

    from dashboard.deadletters import schedule as service

    user, _ = User.objects.get_or_create(username="bench-operator")
    user.groups.add(Group.objects.get_or_create(name="operator")[0])
    plan = asyncio.run(
        service.do_schedule_requeue(
            user=user,
            ids=ids,
            delay=START_AFTER,
            backoff=backoff,  # type: ignore[arg-type]
        )
    )
    return plan.pk


def due_times(plan: int, ids: list[int], prefix: str) -> dict[str, float]:
    """Due time (epoch s) by message id or key."""
    from dashboard.models import DeadLetter

    due = {
        pk: at.timestamp()
        for pk, at in DeadLetter.objects.filter(schedule_id=plan).values_list("pk", "due_at")
        if at is not None
    }
    return {f"{prefix}-{i}": due[pk] for i, pk in enumerate(ids)}


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rabbitmq", type=int, default=8000)
    parser.add_argument("--kafka", type=int, default=2000)
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, check=True
    )
    django.setup()
    from dashboard.deadletters.schedule import Backoff

    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
        path = quote(VHOST, safe="")
        http.put(f"/api/vhosts/{path}").raise_for_status()
        http.put(
            f"/api/permissions/{path}/guest", json={"configure": ".*", "write": ".*", "read": ".*"}
        ).raise_for_status()
    admin = AdminClient({"bootstrap.servers": KAFKA})
    for future in admin.create_topics([NewTopic(TOPIC, 1, 1)], operation_timeout=30).values():
        future.result()
    process = worker()
    try:
        wait_for_dispatcher(process)
        with Arrivals(VHOST, ORIGIN) as arrivals:
            even = Backoff(base=20.0 / args.rabbitmq, factor=1.0, cap=20.0 / args.rabbitmq)
            spread = Backoff(base=0.005, factor=1.01, cap=0.01)
            prefixes = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
            rabbit_ids = seed("rabbitmq", args.rabbitmq, prefixes[0])
            kafka_ids = seed("kafka", args.kafka, prefixes[1])
            began = time.time()
            rabbit_plan = schedule(rabbit_ids, even)
            kafka_plan = schedule(kafka_ids, spread)
            log(
                f"scheduling {args.rabbitmq + args.kafka:,} letters"
                f" took {time.time() - began:.2f} s"
            )
            rabbit_due = due_times(rabbit_plan, rabbit_ids, prefixes[0])
            kafka_due = due_times(kafka_plan, kafka_ids, prefixes[1])
            total = args.rabbitmq + args.kafka
            last = max(max(rabbit_due.values()), max(kafka_due.values()))
            log(
                f"{total:,} letters scheduled: {args.rabbitmq:,} RabbitMQ evenly over"
                f" {max(rabbit_due.values()) - min(rabbit_due.values()):.1f} s,"
                f" {args.kafka:,} Kafka with backoff over"
                f" {max(kafka_due.values()) - min(kafka_due.values()):.1f} s; SQLite at {STATE}"
            )
            deadline = last + 60
            while len(arrivals.seen) < args.rabbitmq and time.time() < deadline:
                time.sleep(0.2)
            time.sleep(1.0)  # copies sent twice would be here by now
            rabbit_seen = list(arrivals.seen)
        kafka_seen = kafka_arrivals(TOPIC, args.kafka, timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=60)
        shutil.copy(STATE / "worker.log", ROOT / "var" / "log" / "bench-schedule-worker.log")

    late: dict[str, list[float]] = {"rabbitmq": [], "kafka": []}
    counts: Counter[str] = Counter()
    for kind, seen, due in (
        ("rabbitmq", rabbit_seen, rabbit_due),
        ("kafka", kafka_seen, kafka_due),
    ):
        for key, at in seen:
            counts[key] += 1
            if counts[key] == 1 and key in due:
                late[kind].append(at - due[key])
    everything = {**rabbit_due, **kafka_due}
    lost = len(set(everything) - set(counts))
    duplicated = sum(n - 1 for n in counts.values() if n > 1)
    sent = sum(1 for key in everything if key in counts)
    log(f"{'kind':10} {'letters':>8} {'p50 s':>8} {'p99 s':>8} {'max s':>8} {'early':>6}")
    for kind, values in late.items():
        if values:
            log(
                f"{kind:10} {len(values):8,} {statistics.median(values):8.3f}"
                f" {percentile(values, 0.99):8.3f} {max(values):8.3f}"
                f" {sum(1 for v in values if v < -0.01):6}"
            )
    from dashboard.models import DeadLetter

    acted = [
        (a - d).total_seconds()
        for a, d in DeadLetter.objects.filter(schedule_id=rabbit_plan).values_list(
            "acted_at", "due_at"
        )
        if a is not None and d is not None
    ]
    log(
        f"rabbitmq rows (acted_at - due_at): p50 {statistics.median(acted):.3f}"
        f" max {max(acted):.3f}"
    )
    values = late["rabbitmq"] + late["kafka"]
    try:
        log(
            f"RESULT due_p50_s={statistics.median(values):.3f}"
            f" due_p99_s={percentile(values, 0.99):.3f} due_max_s={max(values):.3f}"
            f" sent={sent} lost={lost} duplicated={duplicated}"
        )
    finally:
        with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
            http.delete(f"/api/vhosts/{quote(VHOST, safe='')}")
        admin.delete_topics([TOPIC], operation_timeout=30)
        shutil.rmtree(STATE, ignore_errors=True)


if __name__ == "__main__":
    main()
