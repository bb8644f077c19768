"""Fifty users at once: one web process under 50 keep-alive clients, beside the raw broker API.

Starts one Daphne process (``dashboard.settings``, a temporary SQLite database, the
local RabbitMQ and Kafka) and the collector as ``make demo`` runs it (every loop: health,
metrics, capture, ...), logs in, waits for the collector's first health check and first
metrics snapshot (so the queue list answers from the snapshot, as it does in the demo),
then drives each target with ``wrk`` (50 connections, 2 threads, ``DURATION`` seconds
each, one after the other in the same run):

* ``raw``: RabbitMQ's own management API, the first page of the queue list (the
  parameters the dashboard's queue list sends), straight to RabbitMQ;
* ``overview``, ``queues`` (the queue list page), ``inbox`` (the dead-letter inbox):
  the dashboard's pages, logged in;
* ``health``: ``/api/clusters/health``;
* the floors, for scale: ``noop`` (a logged-in request that reads nothing: ``/kafka/``
  answers with a redirect after the session, user and middleware) and ``bare`` (Daphne
  serving ``bare_asgi.py``, no Django: the most any page on one Daphne process can
  answer here).

The database holds ``LETTERS`` dead letters (default 5,000, in 40 failure groups), so
the inbox and the overview count over a table of realistic size.

The web process reaches the brokers through counting TCP proxies (AMQP, management
API, Kafka bootstrap) and the collector straight. Kafka's bootstrap answer names the
broker's own address, so librdkafka's further connections bypass the proxy: those are
counted from ``/proc`` (the web process's TCP sockets to the Kafka port, sampled every
50 ms; librdkafka's connections live long enough to be seen). ``broker_connections_opened``
is the sum: connections the web process opened while serving the load, measured from
outside it. Timeouts are wrk's (2 s) plus its other socket errors. Last line:
``RESULT pages_rps_min=… pages_p99_ms_max=… health_rps=… timeouts=…
broker_connections_opened=… raw_rps=… raw_p99_ms=… noop_rps=… bare_rps=…``.

Run: ``.venv/bin/python benchmarks/concurrent_pages.py`` with the local services up
(``ops/up.sh``) and ``wrk`` installed (``apt-get install wrk``). ``DURATION`` (seconds,
default 20) and ``CLIENTS`` (default 50) override the load.
"""

from __future__ import annotations

import base64
import os
import re
import selectors
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from brokers.rabbitmq.inventory import page_params  # noqa: E402
from brokers.rabbitmq.models import QueueQuery  # noqa: E402

MGMT = "http://127.0.0.1:15672"
GUEST = ("guest", "guest")
PYTHON = sys.executable
DURATION = int(os.environ.get("DURATION", "20"))
CLIENTS = int(os.environ.get("CLIENTS", "50"))
LETTERS = int(os.environ.get("LETTERS", "5000"))
SEED = """
from datetime import UTC, datetime, timedelta
from dashboard.core.clusters import sync_cluster_rows
from dashboard.models import DeadLetter
rows = list(sync_cluster_rows().values())
now = datetime.now(UTC)
statuses = ["pending"] * 6 + ["requeued", "discarded", "failed_again", "requeue_failed"]
DeadLetter.objects.bulk_create(
    [
        DeadLetter(
            cluster=rows[i % 40 % len(rows)], dlq=f"orders-{i % 5}.dlq", capture_key=f"bench-{i}",
            message_id=f"m-{i}", origin_queue=f"orders-{i % 5}", reason="rejected",
            exception_class=f"app.errors.Error{i % 40}", exception_message=f"failure {i % 40}",
            fingerprint=f"{i % 40:040x}", status=statuses[i % len(statuses)],
            body=b"{}", body_size=2, first_failed_at=now - timedelta(seconds=i),
            last_failed_at=now - timedelta(seconds=i),
        )
        for i in range(LETTERS)
    ],
    batch_size=500,
)
"""
PAGES = ("overview", "queues", "inbox")
RABBITMQ = "local-rabbitmq"


class CountingProxy:
    """127.0.0.1:<port> forwarded to a local port; counts the connections it accepts."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.accepted = 0
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(512)
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self.accepted += 1
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    @staticmethod
    def _pump(a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while True:
                for key, _ in selector.select():
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            a.close()
            b.close()


class SocketWatch:
    """Distinct TCP connections a process holds to ``ports`` on 127.0.0.1, sampled from /proc."""

    def __init__(self, pid: int, ports: set[int]) -> None:
        self.pid, self.ports = pid, ports
        self.seen: set[tuple[int, int]] = set()
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _inodes(self) -> set[str]:
        found = set()
        try:
            for fd in os.listdir(f"/proc/{self.pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{self.pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    found.add(target[8:-1])
        except OSError:
            pass
        return found

    def sample(self) -> None:
        inodes = self._inodes()
        try:
            lines = Path(f"/proc/{self.pid}/net/tcp").read_text().splitlines()[1:]
        except OSError:
            return
        for line in lines:
            fields = line.split()
            local, remote, inode = fields[1], fields[2], fields[9]
            port = int(remote.split(":")[1], 16)
            if port in self.ports and inode in inodes:
                self.seen.add((int(local.split(":")[1], 16), port))

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.sample()

    def stop(self) -> None:
        self._stop.set()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def base_env(workdir: Path) -> dict[str, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
        "MQB_USER_PASSWORD": "bench-pass-1",
        "MQB_LOG_LEVEL": "WARNING",
        "MQB_CHANNEL_PREFIX": f"mqb-bench-{uuid.uuid4().hex[:8]}",
    }
    env.pop("MQB_CLUSTERS_FILE", None)
    return env


def forget_redis_keys(env: dict[str, str]) -> int:
    """Deletes the keys this run left in Redis (sessions, snapshots: under its own prefix)."""
    import redis

    client = redis.Redis.from_url(env.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    try:
        keys = list(client.scan_iter(match=f"{env['MQB_CHANNEL_PREFIX']}:*", count=1000))
        return int(client.delete(*keys)) if keys else 0
    finally:
        client.close()


def start(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_until(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"timed out waiting for {what}")


def log_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    form = client.get("/login/").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form)
    assert token, "no CSRF token on the login page"
    response = client.post(
        "/login/",
        data={"username": "bench", "password": "bench-pass-1", "csrfmiddlewaretoken": token[1]},
        headers={"Referer": url + "/login/"},
    )
    assert response.status_code == 302, f"login failed: {response.status_code}"
    return client


def start_collector(env: dict[str, str], workdir: Path) -> subprocess.Popen[bytes]:
    """The collector with every loop, as the ``Procfile`` (``make demo``) starts it."""
    return start([PYTHON, "manage.py", "collect"], env, workdir / "collector.log")


def wait_for_collector(client: httpx.Client) -> None:
    """Until health answers from the collector's check and the queue list from its snapshot."""
    wait_until(
        lambda: all(
            check["source"] == "collector"
            for check in client.get("/api/clusters/health").json()["clusters"]
        ),
        "the collector's first check",
    )
    wait_until(
        lambda: (
            client.get(f"/api/clusters/{RABBITMQ}/rabbitmq/queues").json().get("source")
            == "snapshot"
        ),
        "the collector's first metrics snapshot",
    )


def wrk(url: str, header: str) -> dict[str, float]:
    """wrk's requests/s, p50/p99 in ms, timeouts and other errors, and non-2xx answers."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{CLIENTS}", f"-d{DURATION}s", "--latency", "-H", header, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout

    def ms(label: str) -> float:
        found = re.search(rf"^\s*{label}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if not found:
            return float("nan")
        value, unit = float(found[1]), found[2]
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "rps": float(rps[1]) if rps else 0.0,
        "p50": ms("50"),
        "p99": ms("99"),
        "timeouts": int(errors[4]) if errors else 0,
        "errors": sum(int(errors[i]) for i in (1, 2, 3)) if errors else 0,
        "non2xx": int(non2xx[1]) if non2xx else 0,
    }


def main() -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    proxies = {name: CountingProxy(port) for name, port in (("amqp", 5672), ("mgmt", 15672))}
    proxies["kafka"] = CountingProxy(9092)
    with tempfile.TemporaryDirectory(prefix="mqb-concurrent-") as tmp:
        workdir = Path(tmp)
        env = base_env(workdir)
        for command in (
            ["migrate", "--no-input", "-v0"],
            ["ensure_user", "bench", "--role", "viewer"],
        ):
            subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True)
        if LETTERS:
            subprocess.run(
                [PYTHON, "manage.py", "shell", "-c", SEED.replace("LETTERS", str(LETTERS))],
                cwd=ROOT,
                env=env,
                check=True,
            )
        web_env = {
            **env,
            "MQB_RABBITMQ_URL": f"amqp://guest:guest@127.0.0.1:{proxies['amqp'].port}/",
            "MQB_RABBITMQ_MANAGEMENT_URL": f"http://127.0.0.1:{proxies['mgmt'].port}",
            "MQB_KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{proxies['kafka'].port}",
        }
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        daphne = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        web = start([*daphne, "dashboard.asgi:application"], web_env, workdir / "daphne.log")
        bare_port = free_port()
        bare = subprocess.Popen(
            [*daphne[:-1], str(bare_port), "bare_asgi:application"],
            cwd=Path(__file__).resolve().parent,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        collector = start_collector(env, workdir)
        kafka_direct = SocketWatch(web.pid, {9092})
        try:
            wait_until(lambda: httpx.get(url + "/login/", timeout=1), "Daphne")
            wait_until(
                lambda: httpx.get(f"http://127.0.0.1:{bare_port}/", timeout=1), "bare Daphne"
            )
            client = log_in(url)
            wait_for_collector(client)
            cookie = "Cookie: " + "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            auth = base64.b64encode(b"guest:guest").decode()
            raw_params = urlencode(page_params(QueueQuery(), 1, 100))
            targets = {
                "raw": (f"{MGMT}/api/queues?{raw_params}", f"Authorization: Basic {auth}"),
                "overview": (url + "/", cookie),
                "queues": (url + f"/rabbitmq/{RABBITMQ}/", cookie),
                "inbox": (url + "/deadletters/", cookie),
                "health": (url + "/api/clusters/health", cookie),
                "noop": (url + "/kafka/", cookie),
                "bare": (f"http://127.0.0.1:{bare_port}/", "Accept: */*"),
            }
            for name, (target, header) in targets.items():
                check = httpx.get(target, headers=dict([header.split(": ", 1)]), timeout=60)
                if check.status_code not in (200, 302):
                    # Measured anyway: wrk reports the failures as non-2xx answers.
                    print(
                        f"warning: {name} answers {check.status_code} before the load", flush=True
                    )
            results: dict[str, dict[str, float]] = {}
            opened: dict[str, int] = {}
            for name, (target, header) in targets.items():
                kafka_direct.sample()
                before = sum(p.accepted for p in proxies.values()) + len(kafka_direct.seen)
                results[name] = wrk(target, header)
                kafka_direct.sample()
                after = sum(p.accepted for p in proxies.values()) + len(kafka_direct.seen)
                opened[name] = after - before
                r = results[name]
                print(
                    f"{name:9} {r['rps']:8.1f} req/s  p50 {r['p50']:8.1f} ms  p99 {r['p99']:8.1f}"
                    f" ms  timeouts {r['timeouts']:.0f}  errors {r['errors']:.0f}"
                    f"  non-2xx {r['non2xx']:.0f}  broker connections opened {opened[name]}",
                    flush=True,
                )
        finally:
            kafka_direct.stop()
            for process in (web, collector, bare):
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            forget_redis_keys(env)
    pages = [results[p] for p in PAGES]
    served = [results[p] for p in (*PAGES, "health")]
    print(
        f"RESULT pages_rps_min={min(r['rps'] for r in pages):.1f}"
        f" pages_p99_ms_max={max(r['p99'] for r in pages):.0f}"
        f" health_rps={results['health']['rps']:.1f}"
        f" timeouts={sum(r['timeouts'] for r in served):.0f}"
        f" broker_connections_opened={sum(opened[n] for n in (*PAGES, 'health'))}"
        f" overview_rps={results['overview']['rps']:.1f}"
        f" queues_rps={results['queues']['rps']:.1f}"
        f" inbox_rps={results['inbox']['rps']:.1f}"
        f" raw_rps={results['raw']['rps']:.1f} raw_p99_ms={results['raw']['p99']:.0f}"
        f" noop_rps={results['noop']['rps']:.1f} bare_rps={results['bare']['rps']:.1f}"
    )


if __name__ == "__main__":
    main()
