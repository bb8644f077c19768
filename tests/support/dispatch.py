"""A worker with its own database running scheduled requeues, and what arrives at the origin.

Shared by the dispatcher's tests and ``benchmarks/dlq_schedule.py``: seeding
scheduled letters (``tests.support.schedule_seed`` in a process on the
worker's database), starting the worker (it serves the jobs queue, so it runs
the dispatcher's thread as in production), reading rows with ``served_db.query``
(either database), and a RabbitMQ consumer that notes when each message id arrives.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import aio_pika
from confluent_kafka import Consumer

from tests.conftest import KAFKA, PYTHON, ROOT, celery_worker_command
from tests.support.served_db import query, served_database, served_env

T = TypeVar("T")


def worker_database(directory: Path) -> str:
    """A fresh migrated database for a worker (of the kind MQB_TEST_DB names): its URL."""
    return served_database("dispatch", directory)


def worker_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a worker (and its seeding) on the database at ``url``."""
    return served_env(url, MQB_LOG_LEVEL="INFO", **extra)


def start_worker(
    env: dict[str, str], name: str, log: Path, new_session: bool = False
) -> subprocess.Popen[bytes]:
    """The dashboard's worker (short tasks and jobs: 4 pool threads, and the dispatcher's).

    ``new_session``: a process group of its own, so that ``kill -9`` of the
    group leaves nothing of it behind.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            celery_worker_command("-n", name),
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=new_session,
        )


def start_paused_jobs(
    env: dict[str, str], url: str, vhost: str, queue: str, count: int
) -> list[int]:
    """``count`` bulk requeue jobs queued for the worker and paused before it starts them.

    A worker then takes each into a pool thread, where it waits paused (holding
    the thread) until it is resumed or cancelled.
    """
    jobs: list[int] = []
    for _ in range(count):
        done = subprocess.run(
            [
                PYTHON, "-m", "tests.support.requeue_seed", "rabbitmq", "--vhost", vhost,
                "--queue", queue, "--count", "5", "--start-job",
            ],
            cwd=ROOT, env=env, check=True, capture_output=True, text=True,
        )  # fmt: skip
        jobs.append(int(done.stdout.strip().splitlines()[-1]))
    set_job_states(url, jobs, "paused")
    return jobs


def set_job_states(url: str, jobs: list[int], state: str) -> None:
    marks = ",".join(["%s"] * len(jobs))
    query(url, f"UPDATE dashboard_job SET state = %s WHERE id IN ({marks})", (state, *jobs))


def jobs_started(url: str, jobs: list[int]) -> dict[int, str]:
    """State by job id of those of ``jobs`` a worker has started."""
    marks = ",".join(["%s"] * len(jobs))
    rows = query(
        url,
        f"SELECT id, state FROM dashboard_job WHERE started_at IS NOT NULL AND id IN ({marks})",
        tuple(jobs),
    )
    return {int(pk): str(state) for pk, state in rows}


@dataclass(frozen=True)
class Seeded:
    schedule: int
    due: dict[int, float]  # letter id -> due time (epoch seconds)
    prefix: str

    def keys(self) -> dict[str, float]:
        """Due time by the message id (RabbitMQ) or key (Kafka) each letter carries."""
        return {f"{self.prefix}-{i}": self.due[pk] for i, pk in enumerate(sorted(self.due))}


def seed(env: dict[str, str], kind: str, *args: str) -> Seeded:
    done = subprocess.run(
        [PYTHON, "-m", "tests.support.schedule_seed", kind, *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    data = json.loads(done.stdout.strip().splitlines()[-1])
    return Seeded(data["schedule"], {pk: t for pk, t in data["letters"]}, data["prefix"])


def statuses(url: str, schedule: int) -> dict[str, int]:
    rows = query(
        url,
        "SELECT status, COUNT(*) FROM dashboard_deadletter WHERE schedule_id = %s GROUP BY status",
        (schedule,),
    )
    return {str(status): int(n) for status, n in rows}


def schedule_state(url: str, schedule: int) -> str:
    return str(
        query(url, "SELECT state FROM dashboard_requeueschedule WHERE id = %s", (schedule,))[0][0]
    )


def wait_until(check: Callable[[], T | None], timeout: float, what: str, step: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Arrivals:
    """Consumes ``queue`` in a thread of its own; ``seen``: (message id, arrival epoch time)."""

    vhost: str
    queue: str
    seen: list[tuple[str, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _ready: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Arrivals:
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self._thread.start()
        if not self._ready.wait(15):
            raise AssertionError(f"could not consume {self.queue}")
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(15)

    def ids(self) -> list[str]:
        return [mid for mid, _ in list(self.seen)]

    async def _run(self) -> None:
        connection = await aio_pika.connect(
            host="127.0.0.1", login="guest", password="guest", virtualhost=self.vhost
        )
        try:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=2000)
            queue = await channel.declare_queue(self.queue, durable=False)

            async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
                self.seen.append((message.message_id or "", time.time()))

            await queue.consume(on_message, no_ack=True)
            self._ready.set()
            await asyncio.to_thread(self._stop.wait)
        finally:
            await connection.close()


def kafka_arrivals(topic: str, expect: int, timeout: float = 60) -> list[tuple[str, float]]:
    """(key, broker timestamp in epoch seconds) of the first ``expect`` records of ``topic``."""
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"arrivals-{topic}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    found: list[tuple[str, float]] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + timeout
        while len(found) < expect and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                key = (message.key() or b"").decode()
                found.append((key, message.timestamp()[1] / 1000))
        return found
    finally:
        consumer.close()
