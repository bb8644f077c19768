"""Browse 100 records from an offset and from a timestamp in a 1,000,000-record topic.

Dashboard: the message browser page (HTML, and its JSON API for comparison)
served by a real Daphne over HTTP with a logged-in session (see
kafka_bench_support). Raw: the minimum confluent-kafka calls that fetch the
same records: a long-lived assign-only consumer with the same fetch settings
as the dashboard's browse consumers; assign at the offset (or at
offsets_for_times' answer), consume until 100 records. The "fresh raw" line
creates a new consumer per fetch, for reference.

The floor: the raw fetch plus a bare HTTP round trip, Daphne (same version,
same machine, in the same run) serving a trivial ASGI app without Django
(bare_asgi.py) to a keep-alive client. ``browse_vs_floor`` and
``api_vs_floor`` divide the page and the API by it; the logged-in no-op line is
what a Django request costs that does no Kafka work at all.

The web process's CPU per request (``browse_cpu_ms``, ``api_cpu_ms``,
``noop_cpu_ms``): Daphne's CPU (every thread, librdkafka's included, from /proc)
from each request to the end of the raw fetch after it, averaged over the runs.
The round trips above wait on a 2-core machine shared with Kafka and this client;
this is the work the dashboard itself does for a page, whatever the load.

Run: .venv/bin/python benchmarks/kafka_browse.py   (about a minute; the topic is deleted)
"""

from __future__ import annotations

import random
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from kafka_bench_support import (
    CPU_MS,
    KAFKA,
    PYTHON,
    SERVER_PIDS,
    SLUG,
    _free_port,
    _wait,
    compare,
    dashboard,
)

from brokers.kafka.clients import BROWSE_CONSUMER_CONF

RECORDS = 1_000_000
FETCH = 100
REPS = 25


def produce_topic(admin: AdminClient, topic: str) -> int:
    admin.create_topics([NewTopic(topic, 1, 1)], request_timeout=30)[topic].result()
    producer = Producer(
        {
            "bootstrap.servers": KAFKA,
            "linger.ms": 50,
            "batch.size": 1_000_000,
            "queue.buffering.max.messages": 1_000_000,
            "compression.type": "lz4",
            "acks": 1,
        }
    )
    base = int(time.time() * 1000) - RECORDS  # one record per millisecond, in the past
    started = time.monotonic()
    for i in range(RECORDS):
        value = b'{"order": %d, "status": "paid"}' % i
        while True:
            try:
                producer.produce(topic, value=value, key=b"k%d" % (i % 1000), timestamp=base + i)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 10_000 == 0:
            producer.poll(0)
    assert producer.flush(120) == 0
    print(f"produced {RECORDS} records in {time.monotonic() - started:.1f} s")
    return base


@contextmanager
def bare_server() -> Iterator[httpx.Client]:
    """A keep-alive client of Daphne serving bare_asgi.py (no Django)."""
    port = _free_port()
    process = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "bare_asgi:application"],
        cwd=Path(__file__).resolve().parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait(port, process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            yield client
    finally:
        process.terminate()
        process.wait(timeout=15)


def raw_consumer() -> Consumer:
    conf = {"bootstrap.servers": KAFKA, "group.id": f"mqb-bench-raw-{uuid.uuid4().hex[:6]}"}
    conf.update(BROWSE_CONSUMER_CONF)
    return Consumer(conf)


def raw_fetch(consumer: Consumer, topic: str, offset: int) -> list[object]:
    consumer.assign([TopicPartition(topic, 0, offset)])
    got: list[object] = []
    while len(got) < FETCH:
        for message in consumer.consume(FETCH - len(got), 5):
            if message.error() is None:
                got.append(message)
    consumer.unassign()
    return got


def raw_fetch_by_time(consumer: Consumer, topic: str, ms: int) -> list[object]:
    (found,) = consumer.offsets_for_times([TopicPartition(topic, 0, ms)], timeout=5)
    return raw_fetch(consumer, topic, found.offset)


def main() -> None:
    admin = AdminClient({"bootstrap.servers": KAFKA})
    topic = f"mqb-bench-browse-{uuid.uuid4().hex[:8]}"
    rng = random.Random(7)
    offsets = [rng.randrange(0, RECORDS - FETCH) for _ in range(REPS + 2)]
    try:
        base = produce_topic(admin, topic)
        warm = raw_consumer()
        path = f"/clusters/{SLUG}/kafka/topics/{topic}/messages/"
        api = f"/api/clusters/{SLUG}/kafka/topics/{topic}/messages"
        with dashboard() as http, bare_server() as bare:

            def bare_get(_rep: int) -> None:
                assert bare.get("/").status_code == 200

            def page(params: dict[str, Any]) -> None:
                response = http.get(path, params=params)
                assert response.status_code == 200, response.status_code
                assert response.text.count('class="record"') == FETCH

            def api_get(params: dict[str, Any]) -> None:
                data = http.get(api, params=params).json()
                assert len(data["records"]) == FETCH

            def by_offset(rep: int) -> dict[str, Any]:
                return {"partition": 0, "start": "offset", "offset": offsets[rep], "limit": FETCH}

            def by_time(rep: int) -> dict[str, Any]:
                ms = base + offsets[rep]
                return {"partition": 0, "start": "timestamp", "timestamp": ms, "limit": FETCH}

            def fresh(fetch: Callable[[Consumer], list[object]]) -> None:
                consumer = raw_consumer()
                try:
                    assert len(fetch(consumer)) == FETCH
                finally:
                    consumer.close()

            results = compare(
                {
                    "offset: page vs raw": (
                        lambda r: page(by_offset(r)),
                        lambda r: raw_fetch(warm, topic, offsets[r]),
                    ),
                    "timestamp: page vs raw": (
                        lambda r: page(by_time(r)),
                        lambda r: raw_fetch_by_time(warm, topic, base + offsets[r]),
                    ),
                    "offset: API vs raw": (
                        lambda r: api_get(by_offset(r)),
                        lambda r: raw_fetch(warm, topic, offsets[r]),
                    ),
                    "timestamp: API vs raw": (
                        lambda r: api_get(by_time(r)),
                        lambda r: raw_fetch_by_time(warm, topic, base + offsets[r]),
                    ),
                    "offset: page vs fresh raw": (
                        lambda r: page(by_offset(r)),
                        lambda r: fresh(lambda c: raw_fetch(c, topic, offsets[r])),
                    ),
                    "timestamp: page vs fresh raw": (
                        lambda r: page(by_time(r)),
                        lambda r: fresh(lambda c: raw_fetch_by_time(c, topic, base + offsets[r])),
                    ),
                    # A logged-in request that does no Kafka work at all.
                    "no-op: /kafka/ redirect": (
                        lambda r: http.get("/kafka/"),
                        lambda r: None,
                    ),
                    # The HTTP floor: Daphne answering without Django.
                    "bare ASGI round trip": (bare_get, lambda r: None),
                },
                reps=REPS,
                server_pid=SERVER_PIDS[id(http)],
            )
        warm.close()
    finally:
        admin.delete_topics([topic], operation_timeout=30)[topic].result()
        print(f"deleted {topic}")

    def ratio(*names: str) -> float:
        return sum(results[n][0] for n in names) / sum(results[n][1] for n in names)

    noop = results["no-op: /kafka/ redirect"][0]
    bare_ms = results["bare ASGI round trip"][0]
    print(f"logged-in no-op request (Daphne + Django, no Kafka call): {noop:.2f} ms")
    print(f"bare ASGI round trip (Daphne, no Django): {bare_ms:.2f} ms")

    def cpu(kind: str) -> float:
        # The web process's CPU per request, offset and timestamp reads alike.
        return (CPU_MS[f"offset: {kind}"] + CPU_MS[f"timestamp: {kind}"]) / 2

    def vs_floor(*names: str) -> float:
        # The floor of each request: its raw fetch plus one bare round trip.
        return sum(results[n][0] for n in names) / sum(results[n][1] + bare_ms for n in names)

    print(
        "browse_vs_raw: HTML page vs a long-lived raw consumer (same fetch settings);"
        " browse_vs_fresh_raw: vs a raw consumer created for each fetch"
    )
    warm_ratio = ratio("offset: page vs raw", "timestamp: page vs raw")
    fresh_ratio = ratio("offset: page vs fresh raw", "timestamp: page vs fresh raw")
    api_ratio = ratio("offset: API vs raw", "timestamp: API vs raw")
    browse_floor = vs_floor("offset: page vs raw", "timestamp: page vs raw")
    api_floor = vs_floor("offset: API vs raw", "timestamp: API vs raw")
    print(
        f"RESULT browse_vs_raw={warm_ratio:.2f} browse_vs_fresh_raw={fresh_ratio:.2f}"
        f" api_vs_raw={api_ratio:.2f} browse_vs_floor={browse_floor:.2f}"
        f" api_vs_floor={api_floor:.2f} noop_ms={noop:.2f} bare_ms={bare_ms:.2f}"
        f" browse_cpu_ms={cpu('page vs raw'):.2f} api_cpu_ms={cpu('API vs raw'):.2f}"
        f" noop_cpu_ms={CPU_MS['no-op: /kafka/ redirect']:.2f}"
    )


if __name__ == "__main__":
    main()
