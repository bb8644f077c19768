"""Two (or more) real collectors on one database, for the lease tests and the failover benchmark.

``prepare(database, vhost, workdir)`` gives a :class:`Stand`: a database of its own
(``served_db.served_database`` of that kind; ``postgres``: the advisory-lock lease,
``sqlite``: the Redis lease), a managed RabbitMQ DLQ fed by a work queue whose messages
expire at once (``x-message-ttl`` 0 dead-letters them), a managed Kafka DLQ topic, and
an alert rule that fires on a queue kept deep. ``Stand.start()`` starts ``manage.py
collect``; :class:`DeadLetterFlow` publishes dead letters with unique ids to both
brokers until stopped. The readers (``lease_row``, ``sample_times``, ``stored_ids``...)
read the database the collectors write.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
from confluent_kafka import Producer

from tests.support import deadletters as h
from tests.support.served_db import query, served_database, served_env

ROOT = Path(__file__).resolve().parents[2]
KAFKA = "127.0.0.1:9092"
RABBIT_SLUG = "local-rabbitmq"
KAFKA_SLUG = "local-kafka"


@dataclass
class Stand:
    database: str
    url: str
    env: dict[str, str]
    vhost: str
    work: str
    dlq: str
    deep: str
    topic: str
    group: str
    workdir: Path
    python: str
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self, name: str, interval: float) -> subprocess.Popen[bytes]:
        log = (self.workdir / f"{name}.log").open("ab")
        process = subprocess.Popen(
            [self.python, "manage.py", "collect", "--interval",
             str(interval)],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        process.log_path = self.workdir / f"{name}.log"  # type: ignore[attr-defined]
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                with_signal(process, signal.SIGCONT)
                process.terminate()
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)

    def clean_brokers(self) -> None:
        h.delete_group(self.group)
        h.delete_topics(self.topic)
        with h.mgmt() as http:
            for name in (self.work, self.dlq, self.deep):
                http.delete(f"/api/queues/{h.q(self.vhost)}/{h.q(name)}")


def with_signal(process: subprocess.Popen[bytes], sig: int) -> None:
    if process.poll() is None:
        os.kill(process.pid, sig)


def log_of(process: subprocess.Popen[bytes]) -> str:
    path: Path = process.log_path  # type: ignore[attr-defined]
    return path.read_text(errors="replace") if path.exists() else ""


def prepare(database: str, vhost: str, workdir: Path, python: str) -> Stand:
    """A database, brokers' queues and topic, managed DLQs and an alert rule, all new."""
    base = h.unique("lease")
    work, dlq, deep = f"{base}-work", f"{base}.dlq", f"{base}-deep"
    with h.mgmt() as http:
        v = h.q(vhost)
        http.put(f"/api/queues/{v}/{h.q(dlq)}", json={"durable": True}).raise_for_status()
        http.put(f"/api/queues/{v}/{h.q(deep)}", json={"durable": True}).raise_for_status()
        http.put(
            f"/api/queues/{v}/{h.q(work)}",
            json={"durable": True, "arguments": {
                "x-message-ttl": 0, "x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq,
            }},
        ).raise_for_status()  # fmt: skip
    h.publish_http(vhost, deep, "held", times=10)
    topic = h.create_topic(h.kafka_name("-dlq"), partitions=3)
    url = served_database("lease", workdir, database)
    env = served_env(
        url,
        MQB_STATE_DIR=str(workdir),
        MQB_LOG_LEVEL="INFO",
        MQB_DEFAULT_CLUSTERS="rabbitmq,kafka",
        MQB_RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}",
        MQB_METRICS_RABBITMQ_VHOSTS=vhost,
        MQB_KAFKA_BOOTSTRAP_SERVERS=KAFKA,
        MQB_KAFKA_DLQ_TOPICS=topic,
        MQB_METRICS_KAFKA_TOPICS=f"^{topic}$",
        MQB_KAFKA_CAPTURE_GROUP=f"{topic}-capture",
        MQB_DLQ_CAPTURE_BATCH="100",
    )
    run = [python, "manage.py"]
    setup = (
        "from dashboard.core.clusters import sync_cluster_rows;"
        "from dashboard.models import ManagedDeadLetterQueue as M, AlertRule;"
        "c = sync_cluster_rows();"
        f"M.objects.create(cluster=c[{RABBIT_SLUG!r}], vhost={vhost!r}, name={dlq!r});"
        f"M.objects.create(cluster=c[{KAFKA_SLUG!r}], vhost='', name={topic!r});"
        "AlertRule.objects.create(name='deep', kind='queue_depth', syntax='glob',"
        f" pattern={deep!r}, threshold=5)"
    )
    subprocess.run([*run, "shell", "-c", setup], cwd=ROOT, env=env, check=True)
    return Stand(
        database, url, env, vhost, work, dlq, deep, topic, f"{topic}-capture", workdir, python
    )


# -- what the collectors wrote ------------------------------------------------------------


def lease_row(url: str) -> tuple[int, int | None]:
    """(token, pid of whoever took it), (0, None) before any collector led."""
    rows = query(url, "SELECT token, pid FROM dashboard_collectorlease WHERE name = %s",
                 ("collector",))  # fmt: skip
    return (int(rows[0][0]), rows[0][1]) if rows else (0, None)


def lease_since(url: str) -> float:
    """When the newest token was taken."""
    rows = query(url, "SELECT since FROM dashboard_collectorlease WHERE name = %s",
                 ("collector",))  # fmt: skip
    return _seconds(rows[0][0])


def members(url: str) -> list[tuple[int, bool]]:
    rows = query(url, "SELECT pid, is_leader FROM dashboard_collectormember ORDER BY pid")
    return [(int(pid), bool(leader)) for pid, leader in rows]


def _seconds(value: Any) -> float:
    if isinstance(value, str):  # SQLite
        from datetime import datetime

        return datetime.fromisoformat(value).timestamp()
    return float(value.timestamp())


def sample_times(url: str, slug: str = RABBIT_SLUG) -> list[float]:
    """When each sample of the cluster was taken (its own row is written every sample)."""
    rows = query(
        url,
        "SELECT s.time FROM dashboard_throughputsample s JOIN dashboard_cluster c"
        " ON c.id = s.cluster_id WHERE c.slug = %s AND s.entity_type = 'cluster'"
        " AND s.resolution = 'raw' ORDER BY s.time",
        (slug,),
    )
    return [_seconds(r[0]) for r in rows]


def stored_ids(url: str) -> tuple[list[str], list[str]]:
    """Message ids of the RabbitMQ rows, record keys of the Kafka rows (every row)."""
    rabbit = [r[0] for r in query(url, "SELECT message_id FROM dashboard_deadletter"
                                       " WHERE vhost != ''")]  # fmt: skip
    kafka = [bytes(r[0]).decode() for r in query(url, "SELECT key FROM dashboard_deadletter"
                                                      " WHERE vhost = ''")]  # fmt: skip
    return rabbit, kafka


def open_alerts(url: str) -> int:
    return int(query(url, "SELECT count(*) FROM dashboard_alert WHERE state != 'resolved'")[0][0])


def wait_for(
    check: Callable[[], Any], timeout: float = 30, what: str = "", poll: float = 0.05
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(poll)


def max_gap(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


# -- dead letters flowing ------------------------------------------------------------------


class DeadLetterFlow:
    """Dead letters with unique ids into both DLQs, ``per_second`` per broker, until stopped."""

    def __init__(self, stand: Stand, per_second: float = 40) -> None:
        self.stand, self.per_second = stand, per_second
        self.rabbit_ids: list[str] = []
        self.kafka_ids: list[str] = []
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._rabbit, daemon=True),
            threading.Thread(target=self._kafka, daemon=True),
        ]

    def __enter__(self) -> DeadLetterFlow:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def stop(self) -> None:
        self.stopping.set()
        for thread in self.threads:
            thread.join(30)

    def _rabbit(self) -> None:
        async def go() -> None:
            connection = await h.amqp(self.stand.vhost)
            try:
                channel = await connection.channel(publisher_confirms=True)
                n = 0
                while not self.stopping.is_set():
                    for _ in range(5):
                        message_id = f"r-{n}-{self.stand.dlq}"
                        n += 1
                        await channel.default_exchange.publish(
                            aio_pika.Message(message_id.encode(), message_id=message_id),
                            self.stand.work,
                        )
                        self.rabbit_ids.append(message_id)
                    await asyncio.sleep(5 / self.per_second)
            finally:
                await connection.close()

        asyncio.run(go())

    def _kafka(self) -> None:
        producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 5, "acks": "all"})
        n = 0
        while not self.stopping.is_set():
            for _ in range(5):
                key = f"k-{n}-{self.stand.topic}"
                n += 1
                producer.produce(self.stand.topic, key.encode(), key=key.encode(),
                                 headers=[("x-original-topic", b"orders")])  # fmt: skip
                self.kafka_ids.append(key)
            producer.poll(0)
            time.sleep(5 / self.per_second)
        assert producer.flush(30) == 0, "Kafka: every record delivered"


def all_stored(stand: Stand, flow: DeadLetterFlow) -> bool:
    rabbit, kafka = stored_ids(stand.url)
    return len(rabbit) >= len(flow.rabbit_ids) and len(kafka) >= len(flow.kafka_ids)
