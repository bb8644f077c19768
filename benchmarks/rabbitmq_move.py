"""Move 100,000 messages of 1 KB: the dashboard's move job against RabbitMQ's dynamic shovel.

Both move the same persistent messages (unique message ids, durable classic
queues, own vhost) in the same run, alternately: the dashboard from A to B,
the shovel back from B to A, several times.

- The dashboard: its real stack. A Daphne process and a Celery worker
  (``--pool=threads``) share a temporary SQLite database; this script logs in over
  HTTP, POSTs ``/api/clusters/local-rabbitmq/rabbitmq/move`` and polls
  ``/api/jobs/<id>`` every 0.2 s until the job is done. Time: from the POST to
  the poll that sees it done (the job's own progress reports and database
  writes included).
- The shovel: what the management UI's "Move messages" creates, a dynamic
  shovel inside the broker (``PUT /api/parameters/shovel/{vhost}/{name}``,
  ``src-delete-after: queue-length``, ``ack-mode: on-confirm``). Time: from the
  PUT until the source is empty and the target holds every message.

After each move the exact counts are checked (passive queue.declare); at the
end every message is consumed and its id counted: lost and duplicated are
over the whole run.

Run: ``.venv/bin/python benchmarks/rabbitmq_move.py`` (``MQB_BENCH_MESSAGES``,
``MQB_BENCH_REPS`` to change the size and the repetitions).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aio_pika
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.move import consume_ids  # noqa: E402

PYTHON = sys.executable
MGMT = "http://127.0.0.1:15672"
GUEST = ("guest", "guest")
N = int(os.environ.get("MQB_BENCH_MESSAGES", "100000"))
REPS = int(os.environ.get("MQB_BENCH_REPS", "7"))
SIZE = 1024
RUN = uuid.uuid4().hex[:8]
VHOST = f"mqb-bench-move-{RUN}"
A, B = "bench-a", "bench-b"
PASSWORD = uuid.uuid4().hex


def log(text: str) -> None:
    print(text, flush=True)


# -- the broker side -----------------------------------------------------------


async def connect() -> aio_pika.abc.AbstractConnection:
    return await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=VHOST
    )


async def fill(amqp: aio_pika.abc.AbstractConnection) -> set[str]:
    channel = await amqp.channel(publisher_confirms=True)
    for name in (A, B):
        await channel.declare_queue(name, durable=True)
    body = os.urandom(SIZE // 2).hex().encode()
    ids = [f"{RUN}-{i}" for i in range(N)]
    for start in range(0, N, 2000):
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(
                        body, message_id=mid, delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                    ),
                    routing_key=A,
                )
                for mid in ids[start : start + 2000]
            )
        )
    await channel.close()
    return set(ids)


async def counts(amqp: aio_pika.abc.AbstractConnection) -> tuple[int, int]:
    channel = await amqp.channel()
    a = await channel.declare_queue(A, passive=True)
    b = await channel.declare_queue(B, passive=True)
    await channel.close()
    return (
        int(a.declaration_result.message_count or 0),
        int(b.declaration_result.message_count or 0),
    )


async def wait_counts(amqp: aio_pika.abc.AbstractConnection, want: tuple[int, int]) -> bool:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if await counts(amqp) == want:
            return True
        await asyncio.sleep(0.05)
    return False


async def shovel(amqp: aio_pika.abc.AbstractConnection, source: str, target: str) -> float:
    uri = "amqp:///" + quote(VHOST, safe="")
    value = {
        "src-protocol": "amqp091",
        "src-uri": uri,
        "src-queue": source,
        "src-delete-after": "queue-length",
        "dest-protocol": "amqp091",
        "dest-uri": uri,
        "dest-queue": target,
        "ack-mode": "on-confirm",
    }
    name = f"move-{uuid.uuid4().hex[:8]}"
    want = (0, N) if target == B else (N, 0)
    async with httpx.AsyncClient(base_url=MGMT, auth=GUEST, timeout=10) as http:
        started = time.monotonic()
        response = await http.put(
            f"/api/parameters/shovel/{quote(VHOST, safe='')}/{name}", json={"value": value}
        )
        response.raise_for_status()
        while True:  # polled: nothing signals "the shovel is done"
            if await counts(amqp) == want:
                return time.monotonic() - started
            await asyncio.sleep(0.02)


# -- the dashboard side --------------------------------------------------------


class Dashboard:
    """Daphne and a Celery worker on a temporary database, as `make demo` runs them."""

    def __init__(self, workdir: Path) -> None:
        self.env = dict(os.environ)
        self.env.update(
            {
                "DJANGO_SETTINGS_MODULE": "dashboard.settings",
                "PYTHONPATH": str(ROOT),
                "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
                "MQB_DEFAULT_CLUSTERS": "rabbitmq",
                "MQB_CELERY_QUEUE": f"mqb-bench-{RUN}",
                "MQB_CHANNEL_PREFIX": f"mqb-bench-{RUN}",
                "MQB_USER_PASSWORD": PASSWORD,
                "MQB_LOG_LEVEL": "WARNING",
            }
        )
        self.port = 18000 + int(RUN[:4], 16) % 2000
        self.processes: list[subprocess.Popen[bytes]] = []
        self.logs = [open(workdir / name, "wb") for name in ("daphne.log", "worker.log")]  # noqa: SIM115

    def start(self) -> None:
        for command in (
            ["migrate", "--no-input", "-v0"],
            ["ensure_user", "bench", "--role", "operator"],
        ):
            subprocess.run(
                [PYTHON, "manage.py", *command],
                cwd=ROOT,
                env=self.env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        daphne = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(self.port)]
        worker = [PYTHON, "-m", "celery", "-A", "dashboard", "worker", "--pool=threads"]
        queue = self.env["MQB_CELERY_QUEUE"]
        worker += ["-Q", f"{queue},{queue}.jobs", "--without-mingle", "--without-gossip"]
        for command, out in (
            ([*daphne, "dashboard.asgi:application"], self.logs[0]),
            (worker, self.logs[1]),
        ):
            self.processes.append(
                subprocess.Popen(
                    command, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT
                )
            )

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
        for f in self.logs:
            f.close()

    async def login(self) -> httpx.AsyncClient:
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}", timeout=30)
        deadline = time.monotonic() + 30
        while True:
            try:
                await client.get("/login/")
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        token = client.cookies["csrftoken"]
        response = await client.post(
            "/login/",
            data={"username": "bench", "password": PASSWORD, "csrfmiddlewaretoken": token},
        )
        assert response.status_code == 302, "login failed"
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        client.headers["Referer"] = f"http://127.0.0.1:{self.port}/"
        return client

    async def move(self, http: httpx.AsyncClient, source: str, target: str) -> tuple[float, Any]:
        started = time.monotonic()
        response = await http.post(
            "/api/clusters/local-rabbitmq/rabbitmq/move",
            json={"vhost": VHOST, "queue": source, "target_queue": target},
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        while True:
            job = (await http.get(f"/api/jobs/{job_id}")).json()
            if job["state"] in ("done", "failed", "cancelled"):
                return time.monotonic() - started, job
            await asyncio.sleep(0.2)


# -- the run -------------------------------------------------------------------


async def main() -> None:
    log(f"moving {N:,} messages of {SIZE} B, {REPS} times each way, in vhost {VHOST}")
    workdir = Path(tempfile.mkdtemp(prefix="mqb-bench-move-"))
    dashboard = Dashboard(workdir)
    amqp = await connect()
    wrong = 0
    try:
        dashboard.start()
        filled = time.monotonic()
        expected = await fill(amqp)
        log(f"filled {A} in {time.monotonic() - filled:.1f} s")
        http_client = await dashboard.login()
        dash_rates, shovel_rates = [], []
        for rep in range(1, REPS + 1):
            seconds, job = await dashboard.move(http_client, A, B)
            ok = job["state"] == "done" and job["done"] == N and await wait_counts(amqp, (0, N))
            dash_rates.append(N / seconds)
            note = "" if ok else f" COUNTS WRONG: {job['verdict']}"
            inside = job["result"].get("elapsed") or 0
            log(
                f"rep {rep}: dashboard {N / seconds:8,.0f} msg/s ({seconds:.2f} s;"
                f" the engine's own time {inside:.2f} s){note}"
            )
            wrong += not ok
            seconds = await shovel(amqp, B, A)
            ok = await wait_counts(amqp, (N, 0))
            wrong += not ok
            shovel_rates.append(N / seconds)
            note = "" if ok else " COUNTS WRONG"
            log(f"rep {rep}: shovel    {N / seconds:8,.0f} msg/s ({seconds:.2f} s){note}")
        await http_client.aclose()
        ids = await consume_ids(amqp, A) + await consume_ids(amqp, B)
        found = set(ids)
        lost = len(expected - found)
        duplicated = len(ids) - len(found) + len(found - expected)
        dash, shov = statistics.median(dash_rates), statistics.median(shovel_rates)
        log(f"median: dashboard move job {dash:,.0f} msg/s, shovel {shov:,.0f} msg/s")
        log("dashboard: Daphne + Celery worker (pool=threads), API start + job polled over HTTP")
        log(
            f"checked by message id after all {2 * REPS} moves: {len(ids):,} messages, "
            f"{lost} lost, {duplicated} duplicated"
        )
        if wrong:
            log(f"{wrong} moves ended with wrong counts (see above)")
        log(f"RESULT move_vs_shovel={dash / shov:.2f} lost={lost} duplicated={duplicated}")
    finally:
        await amqp.close()
        dashboard.stop()


if __name__ == "__main__":
    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=30) as management:
        management.put(f"/api/vhosts/{VHOST}").raise_for_status()
        management.put(
            f"/api/permissions/{VHOST}/guest", json={"configure": ".*", "write": ".*", "read": ".*"}
        ).raise_for_status()
        try:
            asyncio.run(main())
        finally:
            management.delete(f"/api/vhosts/{VHOST}")
