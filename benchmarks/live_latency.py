"""Live tail latency and cost, measured through the real stack.

What runs: a Daphne process serving ``dashboard.asgi`` on a temporary SQLite
database (settings ``dashboard.settings``, the local RabbitMQ and Kafka, the
default ``MQB_TAIL_RATE``), a logged-in session, and a raw websocket client (in
this process) watching ``ws/tail/queue/`` and ``ws/tail/topic/``. A separate
publisher process sends JSON bodies carrying their send time (``time.time()``)
to a queue bound to ``amq.topic`` in a vhost of its own, and to a topic of its
own; both are deleted at the end.

1. Latency: 1,000 msg/s for 3 s, 7 runs per broker; publish-to-client latency
   of every message the tail shows (same host clock). Reference: the RabbitMQ
   management UI refreshes every 5 s, so 5,000 ms is the figure to beat.
2. Cost: 20,000 msg/s (as fast as the publisher can, up to that) for 8 s per
   broker; CPU of the Daphne process (``/proc/<pid>/stat``) in cores, and the
   rate the client receives (must stay at most ``MQB_TAIL_RATE``).
4. One run in a real browser: Debian's Chromium (Playwright) on the queue page,
   tail started by its button, 3 x 3 s at 1,000 msg/s; publish-to-DOM latency
   of each row (a MutationObserver stamps rows as they are added).

3. Metrics freshness: with a collector (``manage.py collect --only metrics``)
   on the same database and channel layer, a metrics websocket watches the
   queue and the topic; 5 bursts of 500 messages each, and the time from the
   end of a burst to the first ``metrics.point`` whose depth includes it.
Last line: ``RESULT tail_p50_ms=<n> tail_p99_ms=<n> web_cpu_cores=<n>``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import secrets
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MGMT = "http://127.0.0.1:15672"
KAFKA = "127.0.0.1:9092"
RUNS = 7
TICK = os.sysconf("SC_CLK_TCK")


# -- publisher (run as a subprocess: python live_latency.py --publish kind target rate seconds)


async def publish_rabbitmq(vhost: str, key: str, rate: int, seconds: float) -> int:
    import aiormq

    connection = await aiormq.connect(f"amqp://guest:guest@127.0.0.1/{quote(vhost, safe='')}")
    channel = await connection.channel()
    sent, start = 0, time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * rate)
        while sent < due:
            body = json.dumps({"sent": time.time(), "n": sent}).encode()
            await channel.basic_publish(body, exchange="amq.topic", routing_key=key)
            sent += 1
        await asyncio.sleep(0.002)
    await connection.close()
    return sent


def publish_kafka(topic: str, rate: int, seconds: float) -> int:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 1})
    sent, start = 0, time.monotonic()
    while (now := time.monotonic()) - start < seconds:
        due = int((now - start) * rate)
        while sent < due:
            body = json.dumps({"sent": time.time(), "n": sent}).encode()
            try:
                producer.produce(topic, body)
            except BufferError:
                producer.poll(0.01)
                continue
            sent += 1
        producer.poll(0)
        time.sleep(0.002)
    producer.flush(10)
    return sent


def publisher_main(kind: str, target: str, rate: int, seconds: float) -> None:
    if kind == "rabbitmq":
        vhost, key = target.split("|", 1)
        sent = asyncio.run(publish_rabbitmq(vhost, key, rate, seconds))
    else:
        sent = publish_kafka(target, rate, seconds)
    print(sent, flush=True)


def publish(kind: str, target: str, rate: int, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, __file__, "--publish", kind, target, str(rate), str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


# -- a minimal websocket client (RFC 6455 text frames; no extension) ----------------


class Socket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, path: str, cookie: str) -> Socket:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                f"Cookie: {cookie}\r\n\r\n"
            ).encode()
        )
        status = await reader.readuntil(b"\r\n\r\n")
        if b" 101 " not in status.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"websocket refused: {status[:80]!r}")
        return cls(reader, writer)

    async def send(self, data: dict[str, Any]) -> None:
        payload = json.dumps(data).encode()
        mask = os.urandom(4)
        header = bytes([0x81, 0x80 | len(payload)]) if len(payload) < 126 else b""
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def receive(self) -> dict[str, Any]:
        while True:
            head = await self.reader.readexactly(2)
            length = head[1] & 0x7F
            if length == 126:
                length = struct.unpack("!H", await self.reader.readexactly(2))[0]
            elif length == 127:
                length = struct.unpack("!Q", await self.reader.readexactly(8))[0]
            payload = await self.reader.readexactly(length)
            if head[0] & 0x0F == 0x1:
                data: dict[str, Any] = json.loads(payload)
                return data
            if head[0] & 0x0F == 0x8:
                raise ConnectionError("closed by the server")

    def close(self) -> None:
        self.writer.close()


# -- the dashboard --------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_dashboard(tmp: str) -> tuple[subprocess.Popen[bytes], int, str, dict[str, str]]:
    password = secrets.token_urlsafe(12)
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="dashboard.settings",
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3",
        MQB_USER_PASSWORD=password,
        MQB_LOG_LEVEL="WARNING",
        MQB_CHANNEL_PREFIX=f"mqb-bench-{uuid.uuid4().hex[:8]}",
    )
    run: dict[str, Any] = {"cwd": ROOT, "env": env, "check": True, "stdout": subprocess.DEVNULL}
    subprocess.run([PYTHON, "manage.py", "migrate", "--no-input", "-v0"], **run)
    subprocess.run([PYTHON, "manage.py", "ensure_user", "bench", "--role", "viewer"], **run)
    port = free_port()
    log = open(Path(tmp) / "daphne.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        if time.monotonic() > deadline or process.poll() is not None:
            raise RuntimeError("Daphne did not start")
        time.sleep(0.1)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        login = client.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
        assert token, "no CSRF token on the login page"
        done = client.post(
            "/login/",
            data={"username": "bench", "password": password, "csrfmiddlewaretoken": token[1]},
            headers={"Referer": base + "/login/"},
        )
        assert done.status_code == 302, f"login failed: {done.status_code}"
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    return process, port, cookie, env


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


# -- measurements ----------------------------------------------------------------------


async def watch(
    ws: Socket, seconds: float, latencies: list[float] | None = None
) -> tuple[int, int, int]:
    """Messages received (and their latencies) for ``seconds``.

    Returns (messages, skipped, most received in any one second).
    """
    received, skipped = 0, 0
    times: list[float] = []
    # Messages the tail read before the watch began may still sit in this
    # client's socket buffer (it was not reading): they are not counted.
    started = time.time()
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            event = await asyncio.wait_for(ws.receive(), left)
        except TimeoutError:
            break
        if event.get("type") == "tail.message":
            now = time.time()
            read_at = datetime.fromisoformat(event["message"]["received_at"]).timestamp()
            if read_at < started:
                continue
            times.append(now)
            received += 1
            skipped = event["skipped"]
            if latencies is not None:
                with_time = json.loads(event["message"]["body"]["text"])
                latencies.append((now - with_time["sent"]) * 1000)
    busiest = max(
        (sum(1 for t in times[i:] if t - s < 1.0) for i, s in enumerate(times)), default=0
    )
    return received, skipped, busiest


async def start_tail(ws: Socket) -> None:
    await ws.send({"action": "start"})
    while (await ws.receive()).get("state") != "running":
        pass


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(port: int, cookie: str, targets: dict[str, tuple[str, str]]) -> str:
    results: dict[str, list[float]] = {}
    cores: list[float] = []
    for kind, (path, target) in targets.items():
        ws = await Socket.open(port, path, cookie)
        await ws.receive()  # the paused status
        await start_tail(ws)
        await asyncio.sleep(1)
        latencies: list[float] = []
        medians = []
        for _ in range(RUNS):
            before = len(latencies)
            publisher = publish(kind, target, 1000, 3.0)
            await watch(ws, 3.5, latencies)
            await asyncio.to_thread(publisher.wait)
            medians.append(statistics.median(latencies[before:]))
        results[kind] = latencies
        print(
            f"{kind}: 1,000 msg/s, {RUNS} runs x 3 s: {len(latencies)} messages shown;"
            f" latency p50 {percentile(latencies, 0.5):.1f} ms,"
            f" p99 {percentile(latencies, 0.99):.1f} ms; per-run medians"
            f" {', '.join(f'{m:.0f}' for m in medians)} ms"
            " (reference: the management UI refreshes every 5,000 ms)"
        )
        await asyncio.sleep(1.5)
        publisher = publish(kind, target, 20_000, 8.0)
        await asyncio.sleep(1.0)  # the publisher process starts up
        cpu_before, wall_before = cpu_seconds(DAPHNE_PID[0]), time.monotonic()
        received, skipped, busiest = await watch(ws, 6.0)
        cpu = (cpu_seconds(DAPHNE_PID[0]) - cpu_before) / (time.monotonic() - wall_before)
        sent = int((await asyncio.to_thread(publisher.communicate))[0].strip() or 0)
        cores.append(cpu)
        print(
            f"{kind}: 20,000 msg/s asked, {sent / 8.0:,.0f} msg/s published; Daphne CPU"
            f" {cpu:.3f} cores; client got {received / 6.0:.1f} msg/s over 6 s, at most"
            f" {busiest} in any 1 s (limit {RATE} per second), skipped so far {skipped}"
        )
        ws.close()
        await asyncio.sleep(1.0)
    pooled = [v for values in results.values() for v in values]
    return (
        f"RESULT tail_p50_ms={percentile(pooled, 0.5):.1f}"
        f" tail_p99_ms={percentile(pooled, 0.99):.1f} web_cpu_cores={max(cores):.3f}"
    )


async def next_depth(ws: Socket) -> tuple[float, int]:
    """The next metrics point with a known depth: (its sample time, depth)."""
    while True:
        event = await ws.receive()
        depth = (
            event.get("values", {}).get("depth") if event.get("type") == "metrics.point" else None
        )
        if depth is not None:
            return float(event["time"]), int(depth)


async def freshness(port: int, cookie: str, path: str, kind: str, target: str) -> str:
    """Seconds from a burst of messages to the first metrics point that shows them."""
    ws = await Socket.open(port, path, cookie)
    seconds: list[float] = []
    try:
        await asyncio.wait_for(next_depth(ws), 30)  # the collector samples the watched entity
        for _ in range(FRESHNESS_RUNS):
            _, before = await asyncio.wait_for(next_depth(ws), 30)
            publisher = publish(kind, target, 2000, 0.25)
            sent = int((await asyncio.to_thread(publisher.communicate))[0].strip() or 0)
            done = time.time()
            while True:
                _, depth = await asyncio.wait_for(next_depth(ws), 60)
                if depth >= before + sent:
                    seconds.append(time.time() - done)
                    break
    finally:
        ws.close()
    return (
        f"{kind}: metrics freshness over {FRESHNESS_RUNS} bursts: a depth change reached the"
        f" client after median {statistics.median(seconds):.2f} s, max {max(seconds):.2f} s"
        f" (watched entities are sampled every {WATCH_INTERVAL:g} s, others every"
        f" {SAMPLE_INTERVAL:g} s; 1.5 intervals = {1.5 * WATCH_INTERVAL:g} / "
        f"{1.5 * SAMPLE_INTERVAL:g} s)"
    )


BROWSER_RUNS = 3
OBSERVE = """() => {
  const rows = document.querySelector('[data-tail] tbody[data-role=messages]');
  window.__seen = [];
  new MutationObserver((changes) => {
    const now = Date.now();
    for (const change of changes) {
      for (const node of change.addedNodes) {
        const pre = node.querySelector && node.querySelector('pre');
        if (pre) window.__seen.push([now, pre.textContent]);
      }
    }
  }).observe(rows, {childList: true});
}"""


def browser_latency(port: int, cookie: str, vhost: str, queue: str) -> str:
    """Debian's Chromium on the queue page: publish-to-DOM latency of the tail's rows."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    base = f"http://127.0.0.1:{port}"
    latencies: list[float] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        context = browser.new_context()
        context.add_cookies(
            [
                {"name": k, "value": v, "url": base}
                for k, v in (part.split("=", 1) for part in cookie.split("; "))
            ]
        )
        page = context.new_page()
        page.goto(
            f"{base}/rabbitmq/local-rabbitmq/queue?" + urlencode({"vhost": vhost, "name": queue})
        )
        page.evaluate(OBSERVE)
        page.click("[data-tail] [data-role=toggle]")
        page.wait_for_selector("[data-tail][data-state=running]", timeout=15_000)
        for _ in range(BROWSER_RUNS):
            page.evaluate("() => { window.__seen = []; }")
            publisher = publish("rabbitmq", f"{vhost}|{queue}", 1000, 3.0)
            publisher.wait()
            page.wait_for_timeout(500)
            for seen_at, text in page.evaluate("() => window.__seen"):
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    latencies.append(seen_at - json.loads(text)["sent"] * 1000)
        browser.close()
    if not latencies:
        return "browser: no tail rows seen"
    return (
        f"browser (Chromium, queue page): 1,000 msg/s, {BROWSER_RUNS} runs x 3 s:"
        f" {len(latencies)} rows; publish-to-DOM latency p50 {percentile(latencies, 0.5):.1f} ms,"
        f" p99 {percentile(latencies, 0.99):.1f} ms"
    )


FRESHNESS_RUNS = 5
WATCH_INTERVAL = float(os.environ.get("MQB_METRICS_WATCH_INTERVAL", "1"))
SAMPLE_INTERVAL = float(os.environ.get("MQB_SAMPLE_INTERVAL", "5"))
DAPHNE_PID: list[int] = []
RATE = int(os.environ.get("MQB_TAIL_RATE", "20"))


def main() -> None:
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    run = uuid.uuid4().hex[:8]
    vhost, queue, topic = f"mqb-bench-tail-{run}", f"bench-tail-{run}", f"mqb-bench-tail-{run}"
    http = httpx.Client(base_url=MGMT, auth=("guest", "guest"), timeout=10)
    admin = AdminClient({"bootstrap.servers": KAFKA})
    v = quote(vhost, safe="")
    try:
        http.put(f"/api/vhosts/{v}").raise_for_status()
        http.put(
            f"/api/permissions/{v}/guest", json={"configure": ".*", "write": ".*", "read": ".*"}
        ).raise_for_status()
        # Nobody consumes the watched queue here: cap it so 20,000 msg/s cannot fill memory.
        http.put(
            f"/api/queues/{v}/{queue}",
            json={"durable": False, "arguments": {"x-max-length": 50_000}},
        ).raise_for_status()
        http.post(
            f"/api/bindings/{v}/e/amq.topic/q/{queue}", json={"routing_key": queue}
        ).raise_for_status()
        admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=15)
        with tempfile.TemporaryDirectory(prefix="mqb-bench-") as tmp:
            process, port, cookie, env = start_dashboard(tmp)
            DAPHNE_PID.append(process.pid)
            collector = subprocess.Popen(
                [PYTHON, "manage.py", "collect", "--only", "metrics"],
                cwd=ROOT,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            print("dashboard: a Daphne process on a temporary database, raw websocket client")
            targets = {
                "rabbitmq": (
                    "/ws/tail/queue/?"
                    + urlencode({"cluster": "local-rabbitmq", "vhost": vhost, "name": queue}),
                    f"{vhost}|{queue}",
                ),
                "kafka": (
                    "/ws/tail/topic/?" + urlencode({"cluster": "local-kafka", "name": topic}),
                    topic,
                ),
            }
            metrics = {
                "rabbitmq": "/ws/metrics/queue/?"
                + urlencode({"cluster": "local-rabbitmq", "vhost": vhost, "name": queue}),
                "kafka": "/ws/metrics/topic/?"
                + urlencode({"cluster": "local-kafka", "name": topic}),
            }
            try:
                for kind, path in metrics.items():
                    print(asyncio.run(freshness(port, cookie, path, kind, targets[kind][1])))
                line = asyncio.run(measure(port, cookie, targets))
                print(browser_latency(port, cookie, vhost, queue))
            finally:
                for child in (process, collector):
                    child.terminate()
                    child.wait(timeout=15)
        print(line)
    finally:
        http.delete(f"/api/vhosts/{v}")
        admin.delete_topics([topic])[topic].result(timeout=15)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        publisher_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    else:
        main()
