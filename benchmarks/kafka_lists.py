"""The topics list and the consumer-groups list at 1,000 topics and 500 groups, and
(``--scale``) at 5,000 topics and 10,000 groups in the same run.

Creates 1,000 topics x 3 partitions (one record per partition) and 500
consumer groups with committed offsets (each on two topics, lagging), all
uniquely prefixed (``kafka_scale`` makes them), then measures, interleaved:

- dashboard: the HTML pages ``/clusters/local-kafka/kafka/topics/?q=<prefix>&page=N``
  and ``.../groups/?q=<prefix>&page=N`` served by a real Daphne over HTTP with a
  logged-in session (see kafka_bench_support), and their JSON API twins;
- raw: the minimum confluent-kafka calls that fetch the same data with a
  long-lived AdminClient: topics = metadata, then low and high watermarks and
  cleanup.policy of the page's topics (three concurrent calls); groups =
  ListGroups, then DescribeGroups of the page and one OffsetFetch per group
  (concurrent), then the end offsets of their committed partitions.

With ``--scale`` it then adds topics and groups under the same prefix up to
5,000 and 10,000 (``--topics``/``--groups`` change those), waits for the
collector to sample them, and measures again: ``growth`` is the dashboard's
median at that size over its median at 1k (the target is at most 2);
``floor_growth`` is the same for a logged-in request that reads nothing (the
broker's own work at that size shares the machine's cores and slows every
process) and ``*_growth_beyond_floor`` the pages' growth divided by it.

The dashboard's lists answer from the snapshot of a real collector
(``manage.py collect``, every 5 s, still sampling during the measurement: its
cost lands on both sides); the benchmark waits until the snapshot holds every
topic and group it made, and reports where each list answered from (a list
that falls back to a live read says so, and why). It prints how long the
collector's full sample took and how many groups it read.

Pages rotate over the list; medians of >= 7 runs. Deletes its topics and groups.

Kafka: ``MQB_KAFKA_BOOTSTRAP_SERVERS`` (default the shared 127.0.0.1:9092). Run
``--scale`` against a broker of its own (15,000 partitions slow every other
user of a broker, and need open files): kafka_scale.py says how to start one.

Run: .venv/bin/python benchmarks/kafka_lists.py            (a few minutes on two cores)
     MQB_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9392 .venv/bin/python benchmarks/kafka_lists.py --scale
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    OffsetSpec,
    ResourceType,
)
from kafka_bench_support import KAFKA, PYTHON, ROOT, SLUG, compare, dashboard
from kafka_scale import group_name, make_groups, make_topics, remove, topic_name

TOPICS = 1000
PARTITIONS = 3
GROUPS = 500
SCALE_TOPICS = 5000
SCALE_GROUPS = 10000
PAGE_SIZE = 50  # the dashboard's default MQB_KAFKA_PAGE_SIZE
REPS = 25
INTERVAL = 5  # the collector's sample interval
TIMEOUT = 10
EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def grow(admin: AdminClient, prefix: str, have: tuple[int, int], want: tuple[int, int]) -> None:
    """From ``have`` (topics, groups) of this prefix to ``want``."""
    started = time.monotonic()
    make_topics(admin, prefix, have[0], want[0], partitions=PARTITIONS, bootstrap=KAFKA)
    print(
        f"made topics {have[0]}..{want[0] - 1} x {PARTITIONS} partitions"
        f" in {time.monotonic() - started:.1f} s",
        flush=True,
    )
    started = time.monotonic()
    make_groups(prefix, have[1], want[1], topics=want[0], partitions=PARTITIONS, bootstrap=KAFKA)
    print(
        f"committed offsets for groups {have[1]}..{want[1] - 1}"
        f" in {time.monotonic() - started:.1f} s",
        flush=True,
    )


def raw_topics_page(admin: AdminClient, prefix: str, page: int) -> list[tuple[str, int, str]]:
    metadata = admin.list_topics(timeout=TIMEOUT)
    names = sorted(n for n in metadata.topics if not n.startswith("__") and prefix in n.casefold())
    shown = names[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    tps = [TopicPartition(t, p) for t in shown for p in metadata.topics[t].partitions]
    low = admin.list_offsets({tp: EARLIEST for tp in tps}, request_timeout=TIMEOUT)
    high = admin.list_offsets({tp: LATEST for tp in tps}, request_timeout=TIMEOUT)
    configs = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, t) for t in shown], request_timeout=TIMEOUT
    )
    lows = {(tp.topic, tp.partition): f.result().offset for tp, f in low.items()}
    highs = {(tp.topic, tp.partition): f.result().offset for tp, f in high.items()}
    policies = {r.name: f.result()["cleanup.policy"].value for r, f in configs.items()}
    return [
        (
            t,
            sum(highs[(t, p)] - lows[(t, p)] for p in metadata.topics[t].partitions),
            policies[t],
        )
        for t in shown
    ]


def raw_groups_page(admin: AdminClient, prefix: str, page: int) -> list[tuple[str, int | None]]:
    listing = admin.list_consumer_groups(request_timeout=TIMEOUT).result()
    ids = sorted(g.group_id for g in listing.valid if prefix in g.group_id.casefold())
    shown = ids[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    described = admin.describe_consumer_groups(shown, request_timeout=TIMEOUT)
    offsets: dict[str, concurrent.futures.Future[Any]] = {}
    for gid in shown:
        request = [ConsumerGroupTopicPartitions(gid)]
        offsets.update(admin.list_consumer_group_offsets(request, request_timeout=TIMEOUT))
    states = {gid: f.result().state for gid, f in described.items()}
    committed = {
        gid: {
            (tp.topic, tp.partition): tp.offset
            for tp in f.result().topic_partitions
            if tp.offset >= 0
        }
        for gid, f in offsets.items()
    }
    wanted = {tp for c in committed.values() for tp in c}
    ends = admin.list_offsets(
        {TopicPartition(t, p): LATEST for t, p in wanted}, request_timeout=TIMEOUT
    )
    high = {(tp.topic, tp.partition): f.result().offset for tp, f in ends.items()}
    assert len(states) == len(shown)
    return [
        (gid, sum(high[tp] - o for tp, o in committed[gid].items()) if committed[gid] else None)
        for gid in shown
    ]


def start_collector(workdir: str) -> subprocess.Popen[bytes]:
    """``manage.py collect`` sampling the local Kafka, on its own database."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{workdir}/collector.sqlite3",
        MQB_DEFAULT_CLUSTERS="kafka",
        MQB_KAFKA_BOOTSTRAP_SERVERS=KAFKA,
        MQB_LOG_LEVEL="WARNING",
    )
    env.pop("MQB_CLUSTERS_FILE", None)
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    log = open(f"{workdir}/collector.log", "wb")  # noqa: SIM115
    return subprocess.Popen(
        [PYTHON, "manage.py", "collect", "--only", "metrics", "--interval", str(INTERVAL)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def collector_status(channel_prefix: str) -> dict[str, Any]:
    raw = redis.Redis.from_url(REDIS_URL).get(f"{channel_prefix}:metrics:status:{SLUG}")
    return json.loads(raw) if raw else {}


def forget_keys(channel_prefix: str) -> None:
    """Delete this run's snapshot, status and session keys from the shared Redis."""
    client = redis.Redis.from_url(REDIS_URL)
    for name in client.scan_iter(f"{channel_prefix}:*", count=1000):
        client.delete(name)


def check_alive(collector: subprocess.Popen[bytes], workdir: str) -> None:
    """Stop the run when the collector has died, keeping its log (the work dir is deleted)."""
    if collector.poll() is None:
        return
    kept = ROOT / "var" / "log" / f"kafka_lists-collector-{int(time.time())}.log"
    kept.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(f"{workdir}/collector.log", kept)
    tail = kept.read_text(errors="replace").splitlines()[-15:]
    raise SystemExit(
        f"the collector exited with {collector.returncode}; its log is kept in {kept}:\n"
        + "\n".join(tail)
    )


def wait_for_lists(
    http: Any, prefix: str, topics: int, groups: int, alive: Callable[[], None]
) -> dict[str, str]:
    """Until both lists count every topic and group made here from the snapshot, or
    (a list that still answers live a minute after counting them all) from where it
    answers anyway; where each answered from, with the reason for a live read."""
    deadline = time.monotonic() + 600
    counted_at: float | None = None
    while time.monotonic() < deadline:
        alive()
        sources: dict[str, str] = {}
        for kind, total in (("topics", topics), ("groups", groups)):
            data = http.get(f"/api/clusters/{SLUG}/kafka/{kind}", params={"q": prefix}).json()
            if data.get("total") == total:
                reason = data.get("live_reason")
                sources[kind] = data["source"] + (f" ({reason})" if reason else "")
        if len(sources) == 2:
            if all(s == "snapshot" for s in sources.values()):
                return sources
            counted_at = counted_at or time.monotonic()
            if time.monotonic() - counted_at > 60:
                return sources
        time.sleep(1)
    raise SystemExit("the lists never counted every topic and group made here")


def measure(
    http: Any, admin: AdminClient, prefix: str, topics: int, groups: int
) -> dict[str, tuple[float, float]]:
    topic_pages = -(-topics // PAGE_SIZE)
    group_pages = -(-groups // PAGE_SIZE)

    def topic_page(rep: int) -> int:
        return 1 + (rep * 7) % topic_pages

    def group_page(rep: int) -> int:
        return 1 + (rep * 3) % group_pages

    def get(path: str, page: int, marker: str) -> None:
        response = http.get(path, params={"q": prefix, "page": page})
        assert response.status_code == 200, response.status_code
        assert response.text.count(marker) == PAGE_SIZE, marker
        source = "snapshot" if 'data-source="snapshot"' in response.text else "live"
        sources[f"{marker[5:-1]} page from {source}"] += 1

    def api(path: str, page: int, key: str) -> None:
        data = http.get(path, params={"q": prefix, "page": page}).json()
        assert len(data[key]) == PAGE_SIZE, key
        sources[f"{key} API from {data['source']}"] += 1

    sources: collections.Counter[str] = collections.Counter()
    html = f"/clusters/{SLUG}/kafka"
    json_api = f"/api/clusters/{SLUG}/kafka"
    results = compare(
        {
            "topics page vs raw": (
                lambda r: get(f"{html}/topics/", topic_page(r), "data-topic="),
                lambda r: raw_topics_page(admin, prefix, topic_page(r)),
            ),
            "groups page vs raw": (
                lambda r: get(f"{html}/groups/", group_page(r), "data-group="),
                lambda r: raw_groups_page(admin, prefix, group_page(r)),
            ),
            "topics API vs raw": (
                lambda r: api(f"{json_api}/topics", topic_page(r), "topics"),
                lambda r: raw_topics_page(admin, prefix, topic_page(r)),
            ),
            "groups API vs raw": (
                lambda r: api(f"{json_api}/groups", group_page(r), "groups"),
                lambda r: raw_groups_page(admin, prefix, group_page(r)),
            ),
            "floor: /kafka/ redirect": (lambda r: http.get("/kafka/"), lambda r: None),
        },
        reps=REPS,
    )
    print(f"answered from: {dict(sorted(sources.items()))}", flush=True)
    return results


def stage(
    http: Any,
    admin: AdminClient,
    prefix: str,
    topics: int,
    groups: int,
    channel_prefix: str,
    alive: Callable[[], None],
) -> dict[str, tuple[float, float]]:
    sources = wait_for_lists(http, prefix, topics, groups, alive)
    print(f"at {topics} topics / {groups} groups the lists answer from: {sources}", flush=True)
    assert raw_topics_page(admin, prefix, 1)[0][1] == PARTITIONS
    assert raw_groups_page(admin, prefix, 1)[0][1] == 2 * PARTITIONS
    results = measure(http, admin, prefix, topics, groups)
    alive()
    status = collector_status(channel_prefix)
    cost = status.get("cost") or {}
    print(
        f"collector: last full sample {status.get('seconds', float('nan')):.2f} s"
        f" (interval {INTERVAL} s), {cost.get('topics')} topics,"
        f" {cost.get('groups')} of {cost.get('groups_total')} groups read",
        flush=True,
    )
    floor = results["floor: /kafka/ redirect"][0]
    print(f"HTTP floor (Daphne + session + auth, no Kafka call): {floor:.2f} ms")
    return results


def ratio(results: dict[str, tuple[float, float]], name: str) -> float:
    return results[name][0] / results[name][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", action="store_true", help="measure again at --topics/--groups")
    parser.add_argument("--topics", type=int, default=SCALE_TOPICS)
    parser.add_argument("--groups", type=int, default=SCALE_GROUPS)
    args = parser.parse_args()
    # Snapshot keys of their own: no other dashboard's collector writes them.
    channel_prefix = f"mqb-bench-{uuid.uuid4().hex[:8]}"
    os.environ["MQB_CHANNEL_PREFIX"] = channel_prefix
    workdir = tempfile.mkdtemp(prefix="mqb-bench-")
    admin = AdminClient({"bootstrap.servers": KAFKA, "log_level": 3})
    prefix = f"mqb-bench-lists-{uuid.uuid4().hex[:6]}"
    made = attempted = (0, 0)
    collector: subprocess.Popen[bytes] | None = None
    scaled: dict[str, tuple[float, float]] = {}
    print(f"Kafka at {KAFKA}", flush=True)
    try:
        # What may exist is deleted afterwards, also when growing stopped half way.
        attempted = (TOPICS, GROUPS)
        grow(admin, prefix, made, attempted)
        made = attempted
        collector = start_collector(workdir)
        running = collector

        def alive() -> None:
            check_alive(running, workdir)

        with dashboard() as http:
            base = stage(http, admin, prefix, TOPICS, GROUPS, channel_prefix, alive)
            if args.scale:
                attempted = (args.topics, args.groups)
                grow(admin, prefix, made, attempted)
                made = attempted
                scaled = stage(http, admin, prefix, args.topics, args.groups, channel_prefix, alive)
    finally:
        if collector is not None:
            collector.terminate()
            collector.wait(timeout=20)
        forget_keys(channel_prefix)
        shutil.rmtree(workdir, ignore_errors=True)
        started = time.monotonic()
        problems = remove(
            admin,
            [topic_name(prefix, i) for i in range(attempted[0])],
            [group_name(prefix, n) for n in range(attempted[1])],
        )
        for problem in problems[:10]:
            print(f"could not delete: {problem}")
        print(
            f"deleted {made[1]} groups and {made[0]} topics in {time.monotonic() - started:.1f} s"
        )
    print(
        f"JSON API: topics_vs_raw={ratio(base, 'topics API vs raw'):.2f}"
        f" groups_vs_raw={ratio(base, 'groups API vs raw'):.2f}"
    )
    print(
        f"RESULT topics_vs_raw={ratio(base, 'topics page vs raw'):.2f}"
        f" groups_vs_raw={ratio(base, 'groups page vs raw'):.2f}"
    )
    if scaled:
        t, g = args.topics, args.groups

        def growth(name: str, side: int) -> float:
            return scaled[name][side] / base[name][side]

        floor = growth("floor: /kafka/ redirect", 0)

        print(
            f"raw growth: topics {growth('topics page vs raw', 1):.2f}"
            f" groups {growth('groups page vs raw', 1):.2f};"
            f" API growth: topics {growth('topics API vs raw', 0):.2f}"
            f" groups {growth('groups API vs raw', 0):.2f}"
        )
        print(
            f"RESULT topics_vs_raw_{t}={ratio(scaled, 'topics page vs raw'):.2f}"
            f" groups_vs_raw_{g}={ratio(scaled, 'groups page vs raw'):.2f}"
            f" topics_growth={growth('topics page vs raw', 0):.2f}"
            f" groups_growth={growth('groups page vs raw', 0):.2f}"
            # The broker's own work at that size shares the machine's cores and slows
            # every process: the floor's growth, and the pages' growth beyond it.
            f" floor_growth={floor:.2f}"
            f" topics_growth_beyond_floor={growth('topics page vs raw', 0) / floor:.2f}"
            f" groups_growth_beyond_floor={growth('groups page vs raw', 0) / floor:.2f}"
        )


if __name__ == "__main__":
    main()
