"""Two Celery workers sharing one bulk requeue on a served PostgreSQL database.

``Workers`` starts named workers on the jobs queue, one job at a time each (so
the job's helper runs on the other worker), and waits until they are ready.
``seed_job`` seeds captured letters and starts the bulk requeue of all of them
(``tests.support.requeue_seed``); ``job_row``, ``statuses`` and ``origin_ids`` /
``kafka_keys`` read back what happened, in the database and at the origin.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from tests.conftest import KAFKA, PYTHON, ROOT, celery_worker_command, stop_process
from tests.support.deadletters import amqp
from tests.support.move import consume_ids
from tests.support.served_db import query

FINAL = ("done", "failed", "cancelled")


class Workers:
    """Named Celery workers on the jobs queue, each running one job (or helper) at a time."""

    def __init__(self, env: dict[str, str], tag: str) -> None:
        self.env = env
        self.tag = tag
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: dict[str, Path] = {}

    def start(self, short: str) -> str:
        """Start worker ``short``; returns its hostname (as jobs record it)."""
        name = f"mqb-{self.tag}-{short}-{uuid.uuid4().hex[:6]}@localhost"
        log = ROOT / "var" / "log" / f"test-requeue-shared-{short}.log"
        log.write_bytes(b"")
        with log.open("ab") as out:
            self.processes[name] = subprocess.Popen(
                celery_worker_command("-n", name, "--concurrency=1", queues="jobs"),
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.logs[name] = log
        return name

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        for name, process in self.processes.items():
            while b" ready." not in self.logs[name].read_bytes():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"worker {name} did not start; see {self.logs[name]}")
                time.sleep(0.1)

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process(process)


def seed_job(env: dict[str, str], kind: str, count: int, **where: str) -> tuple[int, str]:
    """Seed ``count`` letters (``queue``+``vhost`` or ``topic``), start their bulk requeue."""
    prefix = uuid.uuid4().hex[:8]
    args = [f"--{k}={v}" for k, v in where.items()]
    args += ["--count", str(count), "--size", "200", "--prefix", prefix, "--start-job"]
    seeded = subprocess.run(
        [PYTHON, "-m", "tests.support.requeue_seed", kind, *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return int(seeded.stdout.strip().splitlines()[-1]), prefix


def job_row(url: str, job_id: int) -> dict[str, Any]:
    state, done, total, verdict, result, worker, finished = query(
        url,
        "SELECT state, done, total, verdict, result, worker, finished_at FROM dashboard_job"
        " WHERE id = %s",
        (job_id,),
    )[0]
    if isinstance(result, str):
        result = json.loads(result)
    return {
        "state": state,
        "done": done,
        "total": total,
        "verdict": verdict,
        "result": result or {},
        "worker": worker,
        "finished": finished,
    }


def wait_until_final(url: str, job_id: int, timeout: float = 300) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = job_row(url, job_id)
        if row["state"] in FINAL and row["finished"]:
            # Finished by its runner (a cancel sets the state at once).
            return row
        time.sleep(0.1)
    raise AssertionError(f"job #{job_id} did not end: {job_row(url, job_id)}")


def statuses(url: str) -> dict[str, int]:
    rows = query(url, "SELECT status, COUNT(*) FROM dashboard_deadletter GROUP BY status")
    return {status: int(n) for status, n in rows}


def origin_ids(vhost: str, queue: str) -> Counter[str]:
    """Every message id in the queue, consumed."""

    async def take() -> list[str]:
        connection = await amqp(vhost)
        try:
            return await consume_ids(connection, queue)
        finally:
            await connection.close()

    return Counter(asyncio.run(take()))


def kafka_keys(topic: str, expect: int, timeout: float = 120) -> Counter[str]:
    """The keys of every record of the topic's partition 0 (at least ``expect`` of them)."""
    consumer = Consumer(
        {"bootstrap.servers": KAFKA, "group.id": f"mqb-read-{uuid.uuid4().hex[:8]}"}
    )
    try:
        high = consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1]
        consumer.assign([TopicPartition(topic, 0, 0)])
        keys: Counter[str] = Counter()
        deadline = time.monotonic() + timeout
        while sum(keys.values()) < max(high, expect) and time.monotonic() < deadline:
            for message in consumer.consume(1000, timeout=1):
                if message.error() is None:
                    keys[(message.key() or b"").decode()] += 1
        return keys
    finally:
        consumer.close()
