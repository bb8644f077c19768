"""Capture 100,000 dead letters of 1 KB on each broker, into PostgreSQL and into SQLite.

Dashboard: the real capture engines and database sink (``make_capture_engine``
for a ManagedDeadLetterQueue row, the same code the collector runs), storing
into a fresh database of each kind, side by side in one run: a scratch
database on the project's PostgreSQL cluster (``var/postgres.url``; created
and migrated by this script, dropped at the end) and a temporary SQLite file
(migrated, deleted). Each database is measured by a child process of this
script (``--child postgres|sqlite``: Django has one default database per
process), one after the other, every table emptied between runs. Each run
fills the DLQ first (RabbitMQ: published straight into a managed queue
``bench.dlq`` in a benchmark vhost, with an ``x-death`` header; Kafka: a
unique ``*-dlq`` topic with 6 partitions and Spring ``kafka_dlt-*`` headers),
then times capture from start until every row is committed. Lost and
duplicated are counted by message id (RabbitMQ ``message_id``, Kafka key).

Rules, same run: each DLQ is filled twice and captured once with no retry
policies and once with 10 active ones (realistic: nine match nothing, mixing
globs and regular expressions on every field; the last, a regular expression on
the reason or the exception message, matches one letter in ten and schedules
its retry), alternating which goes first (A/B, B/A, ...) on the same messages.
Each run's ratio (rate with the rules over the rate without, captured moments
apart) is paired, so load from other processes that changes between runs cancels
out; ``<broker>_rules_vs_none`` is the median of a broker's ratios and
``rules_vs_none`` the lower of the two. The load average is printed with each run.

Reference, same run: the minimum client loop that drains the same number of
messages without a database: aio-pika consume with manual acks (multiple,
per 500) on a second queue, and a confluent-kafka consumer reading the topic.
On PostgreSQL, Kafka's raw drain is far faster than any insert, so Kafka
capture is also compared with the physical limit of writing its rows: a raw
binary COPY of the same rows (the Kafka capture's, read back) into the same
PostgreSQL database, into a table made ``LIKE dashboard_deadletter INCLUDING
ALL`` plus its foreign keys (the same unique key, indexes and checks), in
batches of the capture's batch size (``MQB_DLQ_CAPTURE_BATCH``), each
committed, as capture commits each batch; a single COPY of all of them is
printed for scale. The rows are read before the clock starts.

RESULT: ``postgres_*`` and ``sqlite_*`` keys for each database; the keys
without a prefix (``rabbitmq_per_s``, the rules ratios, ...) are SQLite's, as
before PostgreSQL was measured; ``lost`` and ``duplicated`` count both
databases (rows per message id / Kafka key).

Run: .venv/bin/python benchmarks/dlq_capture.py [--runs 7] [--messages 100000]
[--databases postgres,sqlite] (many minutes: each run captures four DLQs per
database; the vhost, topics and scratch databases are deleted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KAFKA = "127.0.0.1:9092"
MGMT = "http://127.0.0.1:15672"
RUN = os.environ.get("MQB_BENCH_RUN") or uuid.uuid4().hex[:8]
DB = os.environ.get("MQB_BENCH_DB", "sqlite")  # the database a child measures
VHOST = f"mqb-bench-dlq-{RUN}-{DB}"
STATE = Path(tempfile.mkdtemp(prefix="mqb-bench-dlq-"))
ENV = {
    "DJANGO_SETTINGS_MODULE": "dashboard.settings",
    "DATABASE_URL": os.environ.get("DATABASE_URL") or f"sqlite:///{STATE / 'db.sqlite3'}",
    "MQB_BENCH_RUN": RUN,
    "MQB_BENCH_DB": DB,
    "MQB_STATE_DIR": str(STATE),
    "MQB_DEFAULT_CLUSTERS": "rabbitmq,kafka",
    "MQB_RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:5672/{quote(VHOST, safe='')}",
    "MQB_KAFKA_BOOTSTRAP_SERVERS": KAFKA,
    "MQB_LOG_LEVEL": "WARNING",
}
os.environ.update(ENV)

import aio_pika  # noqa: E402
import django  # noqa: E402
import httpx  # noqa: E402
import psycopg  # noqa: E402
from confluent_kafka import Consumer, Producer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # noqa: E402

BODY = (b'{"order": %d, "pad": "' + b"x" * 1000)[:1000] + b'"}'
PARTITIONS = 6


# -- filling the DLQs -------------------------------------------------------------


async def fill_queue(queue: str, count: int) -> None:
    connection = await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=VHOST
    )
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True)
        deaths: dict[str, Any] = {
            reason: [{"count": 1, "reason": reason, "queue": "orders", "exchange": "events",
                      "routing-keys": ["order.created"], "time": datetime.now(UTC)}]
            for reason in ("rejected", "expired")
        }  # fmt: skip
        for start in range(0, count, 1000):
            await asyncio.gather(
                *(
                    channel.default_exchange.publish(
                        aio_pika.Message(
                            BODY % i,
                            message_id=f"r-{i}",
                            content_type="application/json",
                            headers={
                                "x-death": deaths["expired" if i % 10 == 0 else "rejected"],
                                "x-first-death-queue": "orders",
                            },
                        ),
                        queue,
                    )
                    for i in range(start, min(start + 1000, count))
                )
            )


def fill_topic(topic: str, count: int) -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)], request_timeout=30)[topic].result()
    time.sleep(1)
    producer = Producer(
        {"bootstrap.servers": KAFKA, "linger.ms": 20, "queue.buffering.max.messages": 200_000}
    )
    headers: list[tuple[str, str | bytes | None]] = [
        ("kafka_dlt-original-topic", b"orders"),
        ("kafka_dlt-original-partition", (3).to_bytes(4, "big")),
        ("kafka_dlt-original-offset", (1234).to_bytes(8, "big")),
        ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
    ]
    for i in range(count):
        # One letter in ten says "timed out": what the matching rule retries.
        cause = b"timed out" if i % 10 == 0 else b"has no customer"
        message = ("kafka_dlt-exception-message", b"order %d %s" % (i, cause))
        while True:
            try:
                producer.produce(topic, BODY % i, key=b"k-%d" % i, headers=[*headers, message])
                break
            except BufferError:
                producer.poll(0.05)
    assert producer.flush(120) == 0


# -- the dashboard's capture ------------------------------------------------------


def prepare_managed(slug: str, vhost: str, name: str):  # type: ignore[no-untyped-def]
    from dashboard.core.clusters import sync_cluster_rows
    from dashboard.deadletters.store import CaptureTarget
    from dashboard.models import DeadLetter, DeadLetterBody, ManagedDeadLetterQueue

    DeadLetterBody.objects.all().delete()
    DeadLetter.objects.all().delete()
    ManagedDeadLetterQueue.objects.all().delete()
    cluster = sync_cluster_rows()[slug]
    row = ManagedDeadLetterQueue.objects.create(cluster=cluster, vhost=vhost, name=name)
    return CaptureTarget(row.pk, cluster.pk, slug, cluster.kind, vhost, name)


# Ten active rules, evaluated in this order: the first nine match none of the letters.
RULES: list[dict[str, str]] = [
    {"syntax": "glob", "match_dlq": "payments*.dlq"},
    {"syntax": "glob", "match_origin": "exchange billing / *"},
    {"syntax": "regex", "match_exception_class": r"^com\.acme\.(Fraud|Limit)Exception$"},
    {"syntax": "glob", "match_reason": "maxlen", "match_dlq": "*"},
    {"syntax": "regex", "match_exception_message": "(?i)connection (refused|reset) by peer"},
    {"syntax": "glob", "match_origin": "topic invoices*"},
    {"syntax": "regex", "match_dlq": "^audit[-.]", "match_reason": "rejected"},
    {"syntax": "glob", "match_exception_class": "*TimeoutError", "match_origin": "queue mail*"},
    {"syntax": "regex", "match_exception_message": "quota [0-9]+ exceeded"},
]
# The tenth matches one letter in ten: by reason on RabbitMQ, by message on Kafka.
LAST = {
    "rabbitmq": {"syntax": "regex", "match_reason": "^expired$"},
    "kafka": {"syntax": "regex", "match_exception_message": "timed out"},
}


def set_rules(kind: str | None) -> int:
    """Replace every retry policy by the ten rules for ``kind`` (None: no rules)."""
    from dashboard.models import PolicyDecision, RetryPolicy

    PolicyDecision.objects.all().delete()
    RetryPolicy.objects.all().delete()
    if kind is None:
        return 0
    for position, rule in enumerate([*RULES, LAST[kind]]):
        RetryPolicy.objects.create(
            name=f"bench rule {position}", position=position, enabled=True, dry_run=False,
            delay_seconds=3600, cap_seconds=3600, **rule,
        )  # fmt: skip
    return RetryPolicy.objects.count()


def acted() -> int:
    from dashboard.models import DeadLetter

    return DeadLetter.objects.filter(status=DeadLetter.Status.SCHEDULED).count()


def row_ids(kind: str) -> list[str]:
    from dashboard.models import DeadLetter

    if kind == "rabbitmq":
        return list(DeadLetter.objects.values_list("message_id", flat=True))
    return [bytes(k or b"").decode() for k in DeadLetter.objects.values_list("key", flat=True)]


async def capture(target, count: int) -> float:  # type: ignore[no-untyped-def]
    from asgiref.sync import sync_to_async

    from dashboard.deadletters.capture import make_capture_engine
    from dashboard.models import DeadLetter

    counted = sync_to_async(lambda: DeadLetter.objects.count(), thread_sensitive=False)
    engine = make_capture_engine(target)
    stop = asyncio.Event()
    started = time.monotonic()
    task = asyncio.create_task(engine.run(stop))
    while await counted() < count:
        if task.done():
            task.result()
            raise RuntimeError("capture stopped by itself")
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    stop.set()
    await asyncio.wait_for(task, 30)
    return elapsed


# -- the reference: draining without a database --------------------------------------


async def raw_rabbitmq(queue: str, count: int) -> float:
    connection = await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=VHOST
    )
    async with connection:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=1000)
        q = await channel.get_queue(queue)
        done = asyncio.Event()
        seen = 0
        started = time.monotonic()

        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal seen
            seen += 1
            if seen % 500 == 0 or seen == count:
                await message.ack(multiple=True)
            if seen >= count:
                done.set()

        await q.consume(on_message)
        await done.wait()
        return time.monotonic() - started


def raw_kafka(topic: str, count: int) -> float:
    consumer = Consumer(
        {"bootstrap.servers": KAFKA, "group.id": f"mqb-bench-raw-{uuid.uuid4().hex[:6]}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False}
    )  # fmt: skip
    started = time.monotonic()
    consumer.subscribe([topic])
    seen = 0
    while seen < count:
        seen += sum(1 for m in consumer.consume(500, 1.0) if m.error() is None)
    elapsed = time.monotonic() - started
    consumer.close()
    return elapsed


def raw_copy(batch: int) -> tuple[float, float]:
    """Rows/s of a raw binary COPY of the captured rows into a copy of their table:
    in committed batches of ``batch``, and in one COPY. Each JSON value is encoded
    inside the timed loop by the fastest encoder at hand, the one capture uses
    (orjson through ``encode_jsonb``), as capture has to encode its own."""
    from dashboard.core.jsonb import encode_jsonb
    from dashboard.core.pg_copy import JSONB_ENCODED, copy_type
    from dashboard.models import DeadLetter

    fields = [f for f in DeadLetter._meta.concrete_fields if not f.primary_key]
    names = ", ".join(f'"{f.column}"' for f in fields)
    types = [JSONB_ENCODED if copy_type(f) == "jsonb" else copy_type(f) for f in fields]
    jsons = [i for i, f in enumerate(fields) if f.get_internal_type() == "JSONField"]
    with psycopg.connect(ENV["DATABASE_URL"], autocommit=True) as conn:
        rows = [list(row) for row in conn.execute(
            f"SELECT {names} FROM dashboard_deadletter ORDER BY id"
        )]  # fmt: skip
        # The same foreign keys as the table too (LIKE copies none): capture pays their checks.
        foreign_keys = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
            " WHERE conrelid = 'dashboard_deadletter'::regclass AND contype = 'f'"
        ).fetchall()
        rates = []
        for size in (batch, len(rows)):
            conn.execute("DROP TABLE IF EXISTS bench_copy")
            conn.execute("CREATE TABLE bench_copy (LIKE dashboard_deadletter INCLUDING ALL)")
            for (definition,) in foreign_keys:
                conn.execute(f"ALTER TABLE bench_copy ADD {definition}")
            started = time.monotonic()
            for start in range(0, len(rows), size):
                with (
                    conn.transaction(),
                    conn.cursor() as cursor,
                    cursor.copy(f"COPY bench_copy ({names}) FROM STDIN (FORMAT BINARY)") as copy,
                ):
                    copy.set_types(types)
                    for values in rows[start : start + size]:
                        row = values.copy()
                        for i in jsons:
                            row[i] = encode_jsonb(row[i])
                        copy.write_row(row)
            rates.append(len(rows) / (time.monotonic() - started))
        conn.execute("DROP TABLE bench_copy")
    return rates[0], rates[1]


# -- runs ----------------------------------------------------------------------------


def check(kind: str, count: int) -> tuple[int, int]:
    ids = row_ids(kind)
    prefix = "r-" if kind == "rabbitmq" else "k-"
    expected = {f"{prefix}{i}" for i in range(count)}
    distinct = set(ids)
    return len(expected - distinct), len(ids) - len(distinct)


def capture_group(run: int, with_rules: bool, slug: str) -> str:
    return f"mqb-bench-capture-{RUN}-{DB}-{run}-{'rules' if with_rules else 'none'}-{slug}"


# none/s, rules/s, raw drain/s, lost, dup, acted, raw COPY batches/s, one raw COPY/s
Result = tuple[float, float, float, int, int, int, float, float]


async def capture_both(
    slug: str, vhost: str, dlqs: tuple[str, str], kind: str, count: int, run: int
) -> tuple[float, float, int, int, int]:
    """Capture ``dlqs[0]`` without rules and ``dlqs[1]`` with ten (alternating which first)."""
    from asgiref.sync import sync_to_async
    from django.conf import settings

    rates: dict[bool, float] = {}
    lost = duplicated = scheduled = 0
    for with_rules in (False, True) if run % 2 == 0 else (True, False):
        # A group of its own per capture: the last one's static member may still hold the old.
        settings.MQB_KAFKA_CAPTURE_GROUP = capture_group(run, with_rules, "{slug}")
        await sync_to_async(set_rules)(kind if with_rules else None)
        target = await sync_to_async(prepare_managed)(slug, vhost, dlqs[with_rules])
        rates[with_rules] = count / await capture(target, count)
        missing, extra = await sync_to_async(check)(kind, count)
        lost, duplicated = lost + missing, duplicated + extra
        if with_rules:
            scheduled = await sync_to_async(acted)()
    await sync_to_async(set_rules)(None)
    return rates[False], rates[True], lost, duplicated, scheduled


async def run_rabbitmq(count: int, run: int) -> Result:
    dlqs = (f"bench-{run}.dlq", f"bench-{run}-rules.dlq")
    raw = f"bench-{run}-raw"
    for queue in (*dlqs, raw):
        await fill_queue(queue, count)
    none, rules, lost, duplicated, scheduled = await capture_both(
        "local-rabbitmq", VHOST, dlqs, "rabbitmq", count, run
    )
    raw_seconds = await raw_rabbitmq(raw, count)
    return none, rules, count / raw_seconds, lost, duplicated, scheduled, 0.0, 0.0


async def run_kafka(count: int, run: int, topics: list[str]) -> Result:
    dlqs = (f"mqb-bench-{RUN}-{DB}-{run}-dlq", f"mqb-bench-{RUN}-{DB}-{run}-rules-dlq")
    for topic in dlqs:
        topics.append(topic)
        await asyncio.to_thread(fill_topic, topic, count)
    none, rules, lost, duplicated, scheduled = await capture_both(
        "local-kafka", "", dlqs, "kafka", count, run
    )
    raw_seconds = await asyncio.to_thread(raw_kafka, dlqs[0], count)
    copied = (0.0, 0.0)
    if DB == "postgres":
        from django.conf import settings

        copied = await asyncio.to_thread(raw_copy, settings.MQB_DLQ_CAPTURE_BATCH)
    return none, rules, count / raw_seconds, lost, duplicated, scheduled, *copied


def delete_group(admin: AdminClient, group: str) -> None:
    # The capture consumer is a static member: the group empties when its session ends.
    deadline = time.monotonic() + 20
    while True:
        try:
            admin.delete_consumer_groups([group], request_timeout=30)[group].result()
            return
        except Exception as exc:  # noqa: BLE001 - best effort clean-up
            if "GROUP_ID_NOT_FOUND" in str(exc):
                return  # never made (a run that did not get that far)
            if time.monotonic() > deadline:
                print(f"could not delete group {group}: {exc}")
                return
            time.sleep(1)


def child(runs: int, messages: int) -> None:
    """Measure the database in ``DATABASE_URL`` (migrated here); print one ``CHILD`` line."""
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=ROOT,
        env={**os.environ, **ENV},
        check=True,
    )
    django.setup()
    http = httpx.Client(base_url=MGMT, auth=("guest", "guest"), timeout=30)
    http.put(f"/api/vhosts/{quote(VHOST, safe='')}").raise_for_status()
    http.put(
        f"/api/permissions/{quote(VHOST, safe='')}/guest",
        json={"configure": ".*", "write": ".*", "read": ".*"},
    ).raise_for_status()
    topics: list[str] = []
    results: dict[str, list[Result]] = {"rabbitmq": [], "kafka": []}
    try:
        for run in range(runs):
            rabbit = asyncio.run(run_rabbitmq(messages, run))
            kafka = asyncio.run(run_kafka(messages, run, topics))
            results["rabbitmq"].append(rabbit)
            results["kafka"].append(kafka)
            copied = (
                f"; raw COPY {kafka[6]:,.0f}/s in batches, {kafka[7]:,.0f}/s in one"
                if DB == "postgres"
                else ""
            )
            print(
                f"{DB} run {run + 1} (load {os.getloadavg()[0]:.2f}):"
                f" rabbitmq {rabbit[0]:,.0f} rows/s, {rabbit[1]:,.0f} with rules"
                f" (raw {rabbit[2]:,.0f}/s); kafka {kafka[0]:,.0f} rows/s, {kafka[1]:,.0f} with"
                f" rules (raw {kafka[2]:,.0f}/s{copied}); lost {rabbit[3] + kafka[3]}, duplicated"
                f" {rabbit[4] + kafka[4]}, retries scheduled {rabbit[5]} + {kafka[5]}",
                flush=True,
            )
    finally:
        http.delete(f"/api/vhosts/{quote(VHOST, safe='')}")
        if topics:
            admin = AdminClient({"bootstrap.servers": KAFKA})
            for future in admin.delete_topics(topics, request_timeout=30).values():
                future.result()
            for run in range(runs):
                for with_rules in (False, True):
                    delete_group(admin, capture_group(run, with_rules, "local-kafka"))
        shutil.rmtree(STATE, ignore_errors=True)
    print("CHILD " + json.dumps(results), flush=True)


def summary(db: str, results: dict[str, list[Result]]) -> dict[str, float]:
    """Medians of a database's runs, printed, and its RESULT values."""
    med = {
        kind: [statistics.median(r[i] for r in rows) for i in range(8)]
        for kind, rows in results.items()
    }
    ratios = {kind: statistics.median(r[1] / r[0] for r in rows) for kind, rows in results.items()}
    for kind, values in med.items():
        ours, ruled, raw = values[:3]
        print(
            f"median {db} {kind}: {ours:,.0f} rows/s captured vs {raw:,.0f}/s raw drain"
            f" ({ours / raw:.2f}x); with 10 rules {ruled:,.0f} rows/s"
            f" (median of the runs' ratios: {ratios[kind]:.2f} of the rate without)"
        )
    rabbit, kafka = med["rabbitmq"], med["kafka"]
    found = {
        "rabbitmq_per_s": rabbit[0],
        "kafka_per_s": kafka[0],
        "rabbitmq_rules_per_s": rabbit[1],
        "kafka_rules_per_s": kafka[1],
        "rabbitmq_vs_drain": rabbit[0] / rabbit[2],
        "rabbitmq_rules_vs_none": ratios["rabbitmq"],
        "kafka_rules_vs_none": ratios["kafka"],
        "lost": sum(r[3] for rows in results.values() for r in rows),
        "duplicated": sum(r[4] for rows in results.values() for r in rows),
    }
    if kafka[6]:
        found["kafka_vs_copy"] = kafka[0] / kafka[6]
        print(
            f"median {db} kafka: {kafka[0]:,.0f} rows/s captured vs {kafka[6]:,.0f}/s raw COPY"
            f" in committed batches ({found['kafka_vs_copy']:.2f}x); one COPY of all"
            f" {kafka[7]:,.0f}/s"
        )
    return found


def scratch_postgres() -> tuple[str, str]:
    """A new empty database on the project's cluster: (admin URL, its URL)."""
    admin = (ROOT / "var" / "postgres.url").read_text().strip()
    name = f"mqb_bench_capture_{RUN}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin, admin.rsplit("/", 1)[0] + "/" + name


def drop_postgres(admin: str, url: str) -> None:
    """Drop the scratch database; an autovacuum worker still in it (after many inserts)
    may not be ours to end, so plain DROP is tried again until it leaves."""
    name = url.rsplit("/", 1)[1]
    deadline = time.monotonic() + 120
    while True:
        try:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            return
        except psycopg.Error as exc:
            if time.monotonic() > deadline:
                print(f"could not drop the scratch database {name}: {exc}")
                return
            time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--databases", default="postgres,sqlite")
    parser.add_argument("--child", choices=("postgres", "sqlite"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(options.runs, options.messages)
        return
    print("dashboard: capture engines + database sink into a fresh PostgreSQL database and a")
    print("fresh SQLite file (migrated); raw: a client draining the same messages without a")
    print(f"database, and on PostgreSQL a raw COPY of the Kafka rows; {options.messages} x 1 KB;")
    print("each DLQ captured without retry policies and with 10 active rules (1 in 10 match)")
    found: dict[str, dict[str, float]] = {}
    for db in options.databases.split(","):
        admin = url = ""
        env = {**os.environ, "MQB_BENCH_RUN": RUN, "MQB_BENCH_DB": db}
        if db == "postgres":
            admin, url = scratch_postgres()
            env["DATABASE_URL"] = url
        else:
            env.pop("DATABASE_URL", None)
        try:
            # Its lines as they come; the last one (CHILD) holds its results.
            lines = []
            with subprocess.Popen(
                [sys.executable, __file__, "--child", db, "--runs", str(options.runs),
                 "--messages", str(options.messages)],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True,
            ) as process:  # fmt: skip
                assert process.stdout is not None
                for line in process.stdout:
                    lines.append(line.rstrip("\n"))
                    if not line.startswith("CHILD "):
                        print(line, end="", flush=True)
            if process.returncode:
                raise SystemExit(f"the {db} child failed ({process.returncode})")
        finally:
            if url:
                drop_postgres(admin, url)
        results = json.loads(next(line for line in lines if line.startswith("CHILD "))[6:])
        found[db] = summary(db, results)
    shutil.rmtree(STATE, ignore_errors=True)
    pg, lite = found.get("postgres", {}), found.get("sqlite", {})
    for values in found.values():
        values["rules_vs_none"] = min(
            values["rabbitmq_rules_vs_none"], values["kafka_rules_vs_none"]
        )
    keys = []
    if pg:
        keys += [
            f"postgres_rabbitmq_vs_drain={pg['rabbitmq_vs_drain']:.2f}",
            f"postgres_kafka_vs_copy={pg['kafka_vs_copy']:.2f}",
            f"postgres_rabbitmq_per_s={pg['rabbitmq_per_s']:.0f}",
            f"postgres_kafka_per_s={pg['kafka_per_s']:.0f}",
            f"postgres_rules_vs_none={pg['rules_vs_none']:.2f}",
        ]
    if lite:
        keys += [
            f"sqlite_rabbitmq_vs_drain={lite['rabbitmq_vs_drain']:.2f}",
            f"sqlite_kafka_per_s={lite['kafka_per_s']:.0f}",
            f"rabbitmq_per_s={lite['rabbitmq_per_s']:.0f} kafka_per_s={lite['kafka_per_s']:.0f}",
            f"rabbitmq_rules_per_s={lite['rabbitmq_rules_per_s']:.0f}",
            f"kafka_rules_per_s={lite['kafka_rules_per_s']:.0f}",
            f"rabbitmq_rules_vs_none={lite['rabbitmq_rules_vs_none']:.2f}",
            f"kafka_rules_vs_none={lite['kafka_rules_vs_none']:.2f}",
            f"rules_vs_none={lite['rules_vs_none']:.2f}",
        ]
    lost = sum(int(f["lost"]) for f in found.values())
    duplicated = sum(int(f["duplicated"]) for f in found.values())
    print(
        f"RESULT {' '.join(keys)} lost={lost} duplicated={duplicated} load={os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
