"""The topics list and the consumer-groups list at 1,000 topics and 500 groups.

Creates 1,000 topics x 3 partitions (one record per partition) and 500
consumer groups with committed offsets (each on two topics, lagging), all
uniquely prefixed, then measures, interleaved in the same run:

- dashboard: the HTML pages ``/clusters/local-kafka/kafka/topics/?q=<prefix>&page=N``
  and ``.../groups/?q=<prefix>&page=N`` served by a real Daphne over HTTP with a
  logged-in session (see kafka_bench_support), and their JSON API twins;
- raw: the minimum confluent-kafka calls that fetch the same data with a
  long-lived AdminClient: topics = metadata, then low and high watermarks and
  cleanup.policy of the page's topics (three concurrent calls); groups =
  ListGroups, then DescribeGroups of the page and one OffsetFetch per group
  (concurrent), then the end offsets of their committed partitions.

The dashboard's lists answer from the snapshot of a real collector
(``manage.py collect``, every 5 s, still sampling during the measurement: its
cost lands on both sides); the benchmark waits until the snapshot holds every
topic and group it made, and checks every page says it came from the snapshot.

Pages rotate over the list; medians of >= 7 runs. Deletes its topics and groups.

Run: .venv/bin/python benchmarks/kafka_lists.py   (a few minutes on two cores)
"""

from __future__ import annotations

import concurrent.futures
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    ConfigResource,
    NewTopic,
    OffsetSpec,
    ResourceType,
)
from kafka_bench_support import KAFKA, PYTHON, ROOT, SLUG, compare, dashboard

TOPICS = 1000
PARTITIONS = 3
GROUPS = 500
PAGE_SIZE = 50  # the dashboard's default MQB_KAFKA_PAGE_SIZE
REPS = 25
INTERVAL = 5  # the collector's sample interval
TIMEOUT = 10
EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]


def wait_all(futures: Any) -> list[Any]:
    return [f.result() for f in futures]


def setup(admin: AdminClient, prefix: str) -> tuple[list[str], list[str]]:
    started = time.monotonic()
    topics = [f"{prefix}-t{i:04d}" for i in range(TOPICS)]
    for i in range(0, TOPICS, 100):
        batch = [NewTopic(t, PARTITIONS, 1) for t in topics[i : i + 100]]
        wait_all(admin.create_topics(batch, request_timeout=60).values())
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=TIMEOUT).topics
        ready = [
            t
            for t in topics
            if t in metadata and all(p.leader >= 0 for p in metadata[t].partitions.values())
        ]
        if len(ready) == TOPICS:
            break
        time.sleep(0.5)
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 20})
    for t in topics:
        for p in range(PARTITIONS):
            producer.produce(t, value=b"x", partition=p)
        producer.poll(0)
    assert producer.flush(60) == 0
    print(
        f"created {TOPICS} topics x {PARTITIONS} partitions in {time.monotonic() - started:.1f} s"
    )
    started = time.monotonic()
    groups = [f"{prefix}-g{i:03d}" for i in range(GROUPS)]
    for i in range(0, GROUPS, 50):
        futures: list[Any] = []
        for n, group in enumerate(groups[i : i + 50], start=i):
            offsets = [
                TopicPartition(topics[(2 * n + k) % TOPICS], p, 0)
                for k in range(2)
                for p in range(PARTITIONS)
            ]
            request = [ConsumerGroupTopicPartitions(group, offsets)]
            futures += admin.alter_consumer_group_offsets(request, request_timeout=30).values()
        wait_all(futures)
    print(f"committed offsets for {GROUPS} groups in {time.monotonic() - started:.1f} s")
    return topics, groups


def teardown(admin: AdminClient, topics: list[str], groups: list[str]) -> None:
    for i in range(0, len(groups), 100):
        for future in admin.delete_consumer_groups(
            groups[i : i + 100], request_timeout=30
        ).values():
            try:
                future.result()
            except KafkaException as exc:
                print(f"could not delete a group: {exc}")
    for i in range(0, len(topics), 100):
        for future in admin.delete_topics(topics[i : i + 100], operation_timeout=60).values():
            try:
                future.result()
            except KafkaException as exc:
                print(f"could not delete a topic: {exc}")
    print(f"deleted {len(groups)} groups and {len(topics)} topics")


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


def wait_for_snapshot(http: Any, prefix: str) -> None:
    """Until both lists answer from a snapshot holding every topic and group made here."""
    deadline = time.monotonic() + 300
    wanted = {"topics": TOPICS, "groups": GROUPS}
    while time.monotonic() < deadline:
        ready = True
        for kind, total in wanted.items():
            data = http.get(f"/api/clusters/{SLUG}/kafka/{kind}", params={"q": prefix}).json()
            ready = ready and data.get("source") == "snapshot" and data.get("total") == total
        if ready:
            return
        time.sleep(1)
    raise SystemExit("the collector's snapshot never showed every topic and group")


def main() -> None:
    # Snapshot keys of their own: no other dashboard's collector writes them.
    os.environ["MQB_CHANNEL_PREFIX"] = f"mqb-bench-{uuid.uuid4().hex[:8]}"
    workdir = tempfile.mkdtemp(prefix="mqb-bench-")
    admin = AdminClient({"bootstrap.servers": KAFKA})
    prefix = f"mqb-bench-lists-{uuid.uuid4().hex[:6]}"
    topics: list[str] = []
    groups: list[str] = []
    collector: subprocess.Popen[bytes] | None = None
    try:
        topics, groups = setup(admin, prefix)
        topic_pages = -(-TOPICS // PAGE_SIZE)
        group_pages = -(-GROUPS // PAGE_SIZE)

        def topic_page(rep: int) -> int:
            return 1 + (rep * 7) % topic_pages

        def group_page(rep: int) -> int:
            return 1 + (rep * 3) % group_pages

        assert raw_topics_page(admin, prefix, 1)[0][1] == PARTITIONS
        assert raw_groups_page(admin, prefix, 1)[0][1] == 2 * PARTITIONS
        collector = start_collector(workdir)
        with dashboard() as http:
            wait_for_snapshot(http, prefix)
            print("snapshot ready", flush=True)

            def get(path: str, page: int, marker: str) -> None:
                response = http.get(path, params={"q": prefix, "page": page})
                assert response.status_code == 200, response.status_code
                assert response.text.count(marker) == PAGE_SIZE, marker
                assert 'data-source="snapshot"' in response.text

            def api(path: str, page: int, key: str) -> None:
                data = http.get(path, params={"q": prefix, "page": page}).json()
                assert len(data[key]) == PAGE_SIZE and data["source"] == "snapshot"

            html = f"/clusters/{SLUG}/kafka"
            json = f"/api/clusters/{SLUG}/kafka"
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
                        lambda r: api(f"{json}/topics", topic_page(r), "topics"),
                        lambda r: raw_topics_page(admin, prefix, topic_page(r)),
                    ),
                    "groups API vs raw": (
                        lambda r: api(f"{json}/groups", group_page(r), "groups"),
                        lambda r: raw_groups_page(admin, prefix, group_page(r)),
                    ),
                    "floor: /kafka/ redirect": (lambda r: http.get("/kafka/"), lambda r: None),
                },
                reps=REPS,
            )
    finally:
        if collector is not None:
            collector.terminate()
            collector.wait(timeout=20)
        teardown(admin, topics, groups)
    floor = results["floor: /kafka/ redirect"][0]
    print(f"HTTP floor (Daphne + session + auth, no Kafka call): {floor:.2f} ms")

    def ratio(name: str) -> float:
        return results[name][0] / results[name][1]

    topics_api, groups_api = ratio("topics API vs raw"), ratio("groups API vs raw")
    print(f"JSON API: topics_vs_raw={topics_api:.2f} groups_vs_raw={groups_api:.2f}")
    print(
        f"RESULT topics_vs_raw={ratio('topics page vs raw'):.2f}"
        f" groups_vs_raw={ratio('groups page vs raw'):.2f}"
    )


if __name__ == "__main__":
    main()
