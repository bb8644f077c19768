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
5. Viewers: a hundred browser sessions at once. 20 users log in (one session
   each); each opens 5 metrics websockets (100 in all: 50 on the queue, 50 on
   the topic) and one tail (20 in all: 10 on the queue, 10 on the topic; a
   user may watch at most ``MQB_USER_MAX_TAILS`` tails). Then two publishers
   send 10,000 msg/s each (20,000 msg/s in all, as fast as they can up to
   that), one to the queue and one to the topic, and for ``VIEWERS_SECONDS``:

   - ``viewers_web_cpu_cores``: CPU of the Daphne process in cores.
   - ``viewers_tail_extra_p99_ms``: the 99th percentile, over every message
     every tail client was shown, of its publish-to-client latency minus the
     configured spacing, ``1000 / MQB_TAIL_RATE`` ms (50 ms at the default 20
     a second). The spacing is the longest a fresh message may rightly wait
     for the tail's rate limit: a message that arrives just after one was shown
     waits that long for its turn. The rest is what the dashboard adds.
   - ``viewers_freshness_intervals``: how old the newest point a metrics
     client shows gets, in watch intervals (``MQB_METRICS_WATCH_INTERVAL``,
     the sampling period of watched entities): for every point a client got,
     the time from the sample (the point's ``time``) until the client received
     the next point, or until the end of the window if none came; the 99th
     percentile over all clients and points (the maximum is printed beside
     it). One interval is the ideal; a slow collector, a late or a dropped
     push all make it longer.
   - ``viewers_raw_rabbitmq_p99_ms``: the reference for the RabbitMQ tails, in
     the same window: a plain consumer outside the dashboard (its own process;
     prefetch 1 and an ack per message, as the tap) of a queue bound like the
     tap but holding one message (``x-max-length`` 1, ``drop-head``), so each
     delivery is the freshest RabbitMQ hands over; the 99th percentile of its
     publish-to-receive latency is what the broker itself takes under this load.

``--only PHASE[,PHASE]`` runs some phases (freshness, latency, viewers,
browser; the default is all of them).
Last line: ``RESULT tail_p50_ms=<n> tail_p99_ms=<n> web_cpu_cores=<n>
viewers_web_cpu_cores=<n> viewers_tail_extra_p99_ms=<n> viewers_freshness_intervals=<n>
viewers_raw_rabbitmq_p99_ms=<n>``
(the keys of the phases that ran).
"""

from __future__ import annotations

import argparse
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


async def raw_rabbitmq_consumer(vhost: str, key: str, seconds: float) -> list[list[float]]:
    """The broker's share of a tap's latency: a plain consumer, prefetch 1 and an ack per
    message like the tap, of a queue bound like the tap but holding one message (the newest
    kept, ``drop-head``), so each delivery is as fresh as RabbitMQ can hand it over. Returns
    [arrival, publish-to-receive ms] of each message."""
    import aiormq

    connection = await aiormq.connect(f"amqp://guest:guest@127.0.0.1/{quote(vhost, safe='')}")
    channel = await connection.channel()
    declared = await channel.queue_declare(
        "",
        exclusive=True,
        auto_delete=True,
        arguments={"x-max-length": 1, "x-overflow": "drop-head"},
    )
    name = declared.queue
    assert name is not None  # a server-named queue's name comes back in the answer
    await channel.queue_bind(name, "amq.topic", routing_key=key)
    await channel.basic_qos(prefetch_count=1)
    seen: list[list[float]] = []

    async def on_message(message: Any) -> None:
        now = time.time()
        with contextlib.suppress(ValueError, KeyError, TypeError):
            seen.append([now, (now - json.loads(message.body)["sent"]) * 1000])
        await message.channel.basic_ack(message.delivery.delivery_tag)

    await channel.basic_consume(name, on_message, no_ack=False)
    print("ready", flush=True)
    await asyncio.sleep(seconds)
    await connection.close()
    return seen


def raw_consumer_main(vhost: str, key: str, seconds: float) -> None:
    print(json.dumps(asyncio.run(raw_rabbitmq_consumer(vhost, key, seconds))), flush=True)


def raw_consumer(vhost: str, key: str, seconds: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, __file__, "--raw-consumer", vhost, key, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
    )


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
        self._frame(0x1, json.dumps(data).encode())
        await self.writer.drain()

    def _frame(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        header = bytes([0x80 | opcode, 0x80 | len(payload)]) if len(payload) < 126 else b""
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)

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
            if head[0] & 0x0F == 0x9:
                # Answered as a browser does: Daphne closes a socket whose pings go unanswered.
                self._frame(0xA, payload)

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
    return process, port, login(port, "bench", password), env


def login(port: int, username: str, password: str) -> str:
    """A logged-in session's cookie header."""
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=30) as client:
        page = client.get("/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token, "no CSRF token on the login page"
        done = client.post(
            "/login/",
            data={"username": username, "password": password, "csrfmiddlewaretoken": token[1]},
            headers={"Referer": base + "/login/"},
        )
        assert done.status_code == 302, f"login failed: {done.status_code}"
        return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


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
        f"tail_p50_ms={percentile(pooled, 0.5):.1f}"
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


# -- a hundred viewers -------------------------------------------------------------------

VIEWERS_USERS = 20
VIEWERS_METRICS_EACH = 5  # metrics sockets per user: 100 in all
VIEWERS_RATE = 10_000  # per broker: 20,000 msg/s in all
VIEWERS_SECONDS = 10.0


def viewer_logins(port: int, env: dict[str, str], count: int) -> list[str]:
    """``count`` viewer users (one password hash for all), each logged in once: their cookies."""
    names = [f"bench-viewer-{i}" for i in range(count)]
    code = (
        "from django.contrib.auth.hashers import make_password\n"
        "from django.contrib.auth.models import Group, User\n"
        "import os\n"
        "hashed = make_password(os.environ['MQB_USER_PASSWORD'])\n"
        "viewer = Group.objects.get(name='viewer')\n"
        f"for name in {names!r}:\n"
        "    user, _ = User.objects.get_or_create(username=name)\n"
        "    user.password = hashed\n"
        "    user.save()\n"
        "    user.groups.set([viewer])\n"
    )
    subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return [login(port, name, env["MQB_USER_PASSWORD"]) for name in names]


class MetricsWatcher:
    """One metrics client: when each point arrived and the sample time it carried."""

    def __init__(self, ws: Socket, kind: str) -> None:
        self.ws = ws
        self.kind = kind
        self.points: list[tuple[float, float]] = []  # (arrival, point time)
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            event = await self.ws.receive()
            if event.get("type") == "metrics.point":
                self.points.append((time.time(), float(event["time"])))

    def ages(self, start: float, end: float) -> list[float]:
        """For each point: seconds from its sample until the next point arrived (or ``end``).

        Counted for the points shown during [start, end]: the one shown at
        ``start`` and every one that arrived before ``end``.
        """
        ages = []
        shown: float | None = None  # sample time of the point on show
        for arrival, sampled in self.points:
            if arrival > end:
                break
            if arrival > start and shown is not None:
                ages.append(arrival - shown)
            shown = sampled
        if shown is not None:
            ages.append(end - shown)
        return ages


class TailWatcher:
    """One tail client: publish-to-client latency of each message it is shown after ``start``."""

    def __init__(self, ws: Socket, kind: str) -> None:
        self.ws = ws
        self.kind = kind
        # (arrival, latency ms, of which from the tap reading it to the client)
        self.shown: list[tuple[float, float, float]] = []
        self.skipped = 0
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while True:
            event = await self.ws.receive()
            if event.get("type") != "tail.message":
                continue
            now = time.time()
            self.skipped = event["skipped"]
            message = event["message"]
            with contextlib.suppress(ValueError, KeyError, TypeError):
                sent = json.loads(message["body"]["text"])["sent"]
                read_at = datetime.fromisoformat(message["received_at"]).timestamp()
                self.shown.append((now, (now - sent) * 1000, (now - read_at) * 1000))

    def latencies(self, start: float, end: float) -> list[float]:
        return [ms for arrival, ms, _ in self.shown if start <= arrival <= end]

    def relayed(self, start: float, end: float) -> list[float]:
        return [ms for arrival, _, ms in self.shown if start <= arrival <= end]


async def viewers(
    port: int, cookies: list[str], tails: dict[str, tuple[str, str]], metrics: dict[str, str]
) -> str:
    """100 metrics clients and 20 tail clients while 20,000 msg/s are published."""
    kinds = list(tails)
    watchers: list[MetricsWatcher] = []
    tailers: list[TailWatcher] = []
    try:
        for i, cookie in enumerate(cookies):
            for j in range(VIEWERS_METRICS_EACH):
                ws = await Socket.open(port, metrics[kinds[j % len(kinds)]], cookie)
                await ws.receive()  # metrics.hello
                watchers.append(MetricsWatcher(ws, kinds[j % len(kinds)]))
            ws = await Socket.open(port, tails[kinds[i % len(kinds)]][0], cookie)
            await ws.receive()  # the paused status
            await start_tail(ws)
            tailers.append(TailWatcher(ws, kinds[i % len(kinds)]))
        await asyncio.sleep(2.0)  # the collector sees the watch marks
        raw = None
        if "rabbitmq" in tails:
            vhost, key = tails["rabbitmq"][1].split("|", 1)
            raw = raw_consumer(vhost, key, VIEWERS_SECONDS + 4.5)
            assert raw.stdout is not None
            await asyncio.to_thread(raw.stdout.readline)  # "ready": bound and consuming
        publishers = [
            publish(kind, target, VIEWERS_RATE, VIEWERS_SECONDS + 2.5)
            for kind, (_, target) in tails.items()
        ]
        await asyncio.sleep(1.5)  # the publisher processes start up
        start = time.time()
        cpu_before, wall_before = cpu_seconds(DAPHNE_PID[0]), time.monotonic()
        await asyncio.sleep(VIEWERS_SECONDS)
        cpu = (cpu_seconds(DAPHNE_PID[0]) - cpu_before) / (time.monotonic() - wall_before)
        end = time.time()
        sent = [int((await asyncio.to_thread(p.communicate))[0].strip() or 0) for p in publishers]
        raw_seen = json.loads((await asyncio.to_thread(raw.communicate))[0]) if raw else []
    finally:
        clients: list[MetricsWatcher | TailWatcher] = [*watchers, *tailers]
        for client in clients:
            client.task.cancel()
            client.ws.close()
    spacing = 1000 / RATE
    extra = [ms - spacing for t in tailers for ms in t.latencies(start, end)]
    ages = [age / WATCH_INTERVAL for w in watchers for age in w.ages(start, end)]
    if not extra or not ages:
        raise RuntimeError(f"viewers: {len(extra)} tail messages, {len(ages)} metrics points")
    shown = [len(t.latencies(start, end)) / VIEWERS_SECONDS for t in tailers]
    seconds = VIEWERS_SECONDS + 2.5
    for kind in tails:
        mine = [t for t in tailers if t.kind == kind]
        total = [ms for t in mine for ms in t.latencies(start, end)]
        relayed = [ms for t in mine for ms in t.relayed(start, end)]
        aged = [
            age / WATCH_INTERVAL for w in watchers if w.kind == kind for age in w.ages(start, end)
        ]
        print(
            f"viewers: {kind} tail clients: latency p50 {percentile(total, 0.5):.1f},"
            f" p99 {percentile(total, 0.99):.1f} ms; of which from the tap reading a message"
            f" to the client p50 {percentile(relayed, 0.5):.1f}, p99"
            f" {percentile(relayed, 0.99):.1f} ms; skipped (last seen, per client)"
            f" {sorted(t.skipped for t in mine)}; metrics clients: age p50"
            f" {percentile(aged, 0.5):.2f}, p99 {percentile(aged, 0.99):.2f} watch intervals"
        )
    raw_ms = [ms for arrival, ms in raw_seen if start <= arrival <= end]
    raw_key = ""
    if raw_ms:
        raw_key = f" viewers_raw_rabbitmq_p99_ms={percentile(raw_ms, 0.99):.1f}"
        print(
            "viewers: a raw consumer (prefetch 1, an ack each, a one-message queue bound like"
            f" the tap, outside the dashboard): {len(raw_ms)} messages, latency p50"
            f" {percentile(raw_ms, 0.5):.1f}, p99 {percentile(raw_ms, 0.99):.1f} ms: what"
            " RabbitMQ itself takes to hand a fresh message to a tap-like consumer under this load"
        )
    rates = ", ".join(f"{k} {n / seconds:,.0f}" for k, n in zip(tails, sent, strict=True))
    print(
        f"viewers: {len(cookies)} sessions, {len(watchers)} metrics and {len(tailers)} tail"
        f" clients; published {sum(sent) / seconds:,.0f} msg/s ({rates});"
        f" over {VIEWERS_SECONDS:g} s: Daphne CPU {cpu:.3f} cores;"
        f" tail latency p50 {percentile(extra, 0.5) + spacing:.1f} ms,"
        f" p99 {percentile(extra, 0.99) + spacing:.1f} ms (spacing {spacing:g} ms);"
        f" each tail client shown {min(shown):.1f}-{max(shown):.1f} msg/s;"
        f" metrics age p50 {percentile(ages, 0.5):.2f}, p99 {percentile(ages, 0.99):.2f},"
        f" max {max(ages):.2f} watch intervals ({WATCH_INTERVAL:g} s) over {len(ages)} points"
    )
    return (
        f"viewers_web_cpu_cores={cpu:.3f}"
        f" viewers_tail_extra_p99_ms={percentile(extra, 0.99):.1f}"
        f" viewers_freshness_intervals={percentile(ages, 0.99):.2f}" + raw_key
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


PHASES = ("freshness", "latency", "viewers", "browser")


def main(phases: set[str]) -> None:
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
            keys = []
            try:
                if "freshness" in phases:
                    for kind, path in metrics.items():
                        print(asyncio.run(freshness(port, cookie, path, kind, targets[kind][1])))
                if "latency" in phases:
                    keys.append(asyncio.run(measure(port, cookie, targets)))
                if "viewers" in phases:
                    cookies = viewer_logins(port, env, VIEWERS_USERS)
                    keys.append(asyncio.run(viewers(port, cookies, targets, metrics)))
                if "browser" in phases:
                    print(browser_latency(port, cookie, vhost, queue))
            finally:
                for child in (process, collector):
                    child.terminate()
                    child.wait(timeout=15)
        print("RESULT " + " ".join(keys))
    finally:
        http.delete(f"/api/vhosts/{v}")
        admin.delete_topics([topic])[topic].result(timeout=15)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--publish":
        publisher_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), float(sys.argv[5]))
    elif len(sys.argv) > 1 and sys.argv[1] == "--raw-consumer":
        raw_consumer_main(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    else:
        parser = argparse.ArgumentParser(description="Live tail and metrics latency and cost.")
        parser.add_argument(
            "--only",
            default=",".join(PHASES),
            help=f"comma-separated phases to run, of {', '.join(PHASES)} (default: all)",
        )
        only = set(parser.parse_args().only.split(","))
        if only - set(PHASES):
            parser.error(f"unknown phase(s): {', '.join(sorted(only - set(PHASES)))}")
        main(only)
