"""One viewer cannot take the web process's shared resources from everyone else.

Against a real Daphne (its own, with long search bounds) on the real Kafka:
one viewer floods searches and live tails; another viewer still browses and
tails, the flood beyond the per-user caps is refused with a clear message,
and Daphne's thread count stays bounded.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import struct
import subprocess
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import pytest

from dashboard.core.limits import Busy, FairPool
from tests.conftest import (
    KAFKA,
    PYTHON,
    ROOT,
    free_port,
    python_env,
    stop_process,
    wait_for_port,
)
from tests.settings import RUN_ID
from tests.support.metrics import create_topic, delete_topics

pytestmark = [pytest.mark.kafka, pytest.mark.redis]

CLUSTER = "local-kafka"
PASSWORD = "limits-pass-1"
# Enough records that a search for an absent string scans for seconds, so the
# flood's searches are still running while the other viewer browses.
RECORDS = 1_000_000
ABSENT = "no-record-holds-this-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def big_topic() -> Iterator[str]:
    from confluent_kafka import Producer

    name = f"mqb-test-{RUN_ID}-limits-{uuid.uuid4().hex[:6]}"
    create_topic(name)
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 20, "batch.num.messages": 10000})
    for i in range(RECORDS):
        while True:
            try:
                producer.produce(name, value=b"record %d of the search flood test" % i)
                break
            except BufferError:
                producer.poll(0.1)
    assert producer.flush(60) == 0
    yield name
    delete_topics(name)


@pytest.fixture(scope="module")
def daphne(served_db: dict[str, str], redis_url: str) -> Iterator[tuple[str, int]]:
    """Daphne with the default per-user caps and searches that may run for minutes."""
    for name in ("vic", "val"):
        subprocess.run(
            [PYTHON, "manage.py", "ensure_user", f"{name}-{RUN_ID}", "--role", "viewer"],
            cwd=ROOT,
            env={**served_db, "MQB_USER_PASSWORD": PASSWORD},
            check=True,
            stdout=subprocess.DEVNULL,
        )
    env = python_env(
        DATABASE_URL=served_db["DATABASE_URL"],
        MQB_KAFKA_SEARCH_MAX_SECONDS="300",
        MQB_KAFKA_SEARCH_MAX_RECORDS=str(10 * RECORDS),
        MQB_USER_MAX_KAFKA_READS="4",
        MQB_USER_MAX_TAILS="4",
        MQB_KAFKA_READ_THREADS="8",
    )
    port = free_port()
    log = open(ROOT / "var" / "log" / f"test-limits-daphne-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        stop_process(process)
        log.close()


@contextlib.asynccontextmanager
async def logged_in(url: str, name: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        await client.get("/login/")
        response = await client.post(
            "/login/",
            data={
                "username": f"{name}-{RUN_ID}",
                "password": PASSWORD,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        assert response.status_code == 302, response.text[:300]
        yield client


def threads_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise AssertionError(f"no thread count for pid {pid}")


def search_path(topic: str) -> str:
    return f"/api/clusters/{CLUSTER}/kafka/topics/{topic}/messages?" + urlencode(
        {"q": ABSENT, "start": "oldest", "limit": "10"}
    )


async def test_it_refuses_a_viewers_searches_beyond_the_cap_and_keeps_others_browsing(
    daphne: tuple[str, int], big_topic: str
) -> None:
    url, _ = daphne
    async with logged_in(url, "vic") as vic, logged_in(url, "val") as val:
        flood = [asyncio.create_task(vic.get(search_path(big_topic))) for _ in range(20)]
        # The refusals come back at once and four searches keep scanning (for
        # many seconds); without a cap all twenty would be queued for threads.
        for _ in range(50):
            if sum(t.done() for t in flood) >= 16:
                break
            await asyncio.sleep(0.1)

        browse = await val.get(
            f"/api/clusters/{CLUSTER}/kafka/topics/{big_topic}/messages?limit=5&start=newest"
        )
        page = await vic.get(
            f"/clusters/{CLUSTER}/kafka/topics/{big_topic}/messages/?"
            + urlencode({"q": ABSENT, "start": "oldest"})
        )
        answers = await asyncio.gather(*flood)

    assert browse.status_code == 200, browse.text[:300]
    assert [r["offset"] for r in browse.json()["records"]] == list(range(RECORDS - 5, RECORDS))

    statuses = sorted(r.status_code for r in answers)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses.count(200) >= 4, statuses
    refused = [r for r in answers if r.status_code == 429]
    assert refused, "20 parallel searches of one viewer were all run"
    body = refused[0].json()
    assert body["code"] == "too_many_requests"
    assert "MQB_USER_MAX_KAFKA_READS=4" in body["error"]
    assert int(refused[0].headers["Retry-After"]) >= 1
    searched = next(r.json() for r in answers if r.status_code == 200)
    assert searched["records"] == [] and searched["scanned"] == RECORDS

    assert page.status_code == 429
    assert "MQB_USER_MAX_KAFKA_READS=4" in page.text and 'role="alert"' in page.text
    assert "Retry-After" in page.headers


# -- live tails over a real websocket ------------------------------------------------


class WebSocket:
    """A minimal RFC 6455 client (text frames only), enough to drive the tail socket."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, url: str, path: str, cookies: httpx.Cookies) -> WebSocket:
        parts = urlsplit(url)
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        key = base64.b64encode(os.urandom(16)).decode()
        cookie = "; ".join(f"{k}={v}" for k, v in cookies.items())
        request = (
            f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Origin: {url}\r\nCookie: {cookie}\r\n\r\n"
        )
        writer.write(request.encode())
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head[:200]
        return cls(reader, writer)

    async def send_json(self, data: Any) -> None:
        payload = json.dumps(data).encode()
        mask = os.urandom(4)
        assert len(payload) < 126
        frame = bytes([0x81, 0x80 | len(payload)]) + mask
        frame += bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(frame)
        await self.writer.drain()

    async def receive_json(self) -> Any:
        while True:
            first, second = await asyncio.wait_for(self.reader.readexactly(2), 30)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise ConnectionError(f"closed by the server: {payload[:2].hex()}")
            if opcode == 0x1:
                return json.loads(payload)

    async def status_until(self, *states: str) -> dict[str, Any]:
        while True:
            event = await self.receive_json()
            if event.get("type") == "tail.status" and event.get("state") in states:
                return dict(event)

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(OSError):
            await self.writer.wait_closed()


def tail_path(topic: str) -> str:
    return "/ws/tail/topic/?" + urlencode({"cluster": CLUSTER, "name": topic})


@pytest.fixture
def topics() -> Iterator[list[str]]:
    names = [f"mqb-test-{RUN_ID}-tails-{uuid.uuid4().hex[:6]}" for _ in range(20)]
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    from tests.support.metrics import kafka_admin

    futures = kafka_admin().create_topics([NewTopic(n, 1, 1) for n in names], request_timeout=15)
    for future in futures.values():
        future.result(timeout=30)
    yield names
    delete_topics(*names)


async def test_it_refuses_a_viewers_tails_beyond_the_cap_and_bounds_the_threads(
    daphne: tuple[str, int], topics: list[str]
) -> None:
    url, pid = daphne
    sockets: list[WebSocket] = []
    async with logged_in(url, "vic") as vic, logged_in(url, "val") as val:
        try:
            # Let the process start its usual threads first (executors, channel layer).
            assert (await vic.get(f"/api/clusters/{CLUSTER}/kafka/topics")).status_code == 200
            before = threads_of(pid)
            for topic in topics:
                ws = await WebSocket.connect(url, tail_path(topic), vic.cookies)
                sockets.append(ws)
                await ws.status_until("paused")
                await ws.send_json({"action": "start"})
            answers = [await ws.status_until("running", "refused") for ws in sockets]
            states = [a["state"] for a in answers]
            assert states.count("running") == 4, states
            refusal = next(a for a in answers if a["state"] == "refused")
            assert "MQB_USER_MAX_TAILS=4" in refusal["message"]
            during = threads_of(pid)

            # Another viewer is not affected by the first one's share.
            other = await WebSocket.connect(url, tail_path(topics[-1]), val.cookies)
            sockets.append(other)
            await other.status_until("paused")
            await other.send_json({"action": "start"})
            assert (await other.status_until("running", "refused"))["state"] == "running"

            # Pausing one of the first viewer's tails gives its place back.
            first = sockets[states.index("running")]
            await first.send_json({"action": "pause"})
            await first.status_until("paused")
            refused = sockets[states.index("refused")]
            await refused.send_json({"action": "start"})
            assert (await refused.status_until("running", "refused"))["state"] == "running"
        finally:
            for ws in sockets:
                await ws.close()

    # 20 Kafka tails would add a consumer and its librdkafka threads each (about
    # 100 threads); four add a few dozen at most.
    assert during - before < 60, f"{before} threads before the tails, {during} with them"


# -- the fair pool itself, with real threads -------------------------------------------


async def until(check: Callable[[], bool]) -> None:
    for _ in range(1000):
        if check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


async def test_it_hands_a_freed_thread_to_the_user_holding_the_fewest() -> None:
    pool = FairPool(2, lambda: 3, "reads")
    gates = {name: threading.Event() for name in ("a1", "a2", "a3", "b1")}
    order: list[str] = []

    async def read(user: str, name: str) -> None:
        async with pool.slot(user) as executor:
            order.append(name)
            await asyncio.get_running_loop().run_in_executor(executor, gates[name].wait)

    a1 = asyncio.create_task(read("a", "a1"))
    a2 = asyncio.create_task(read("a", "a2"))
    await until(lambda: len(order) == 2)
    a3 = asyncio.create_task(read("a", "a3"))  # waits: both threads are a's
    await until(lambda: pool.stats()["admitted"] == 3)
    with pytest.raises(Busy, match="MQB_USER_MAX_KAFKA_READS=3"):
        async with pool.slot("a"):
            pass
    b1 = asyncio.create_task(read("b", "b1"))  # waits too, after a3
    await until(lambda: pool.stats()["admitted"] == 4)
    assert order == ["a1", "a2"] and pool.stats()["busy"] == 2

    gates["a1"].set()
    await a1
    await until(lambda: len(order) == 3)
    assert order == ["a1", "a2", "b1"], "the freed thread went to a, who held one, not to b"
    for gate in gates.values():
        gate.set()
    await asyncio.gather(a2, a3, b1)
    assert order == ["a1", "a2", "b1", "a3"] and pool.stats() == {"busy": 0, "admitted": 0}


async def test_it_counts_a_given_up_read_until_its_thread_returns() -> None:
    pool = FairPool(1, lambda: 1, "reads")
    gate = threading.Event()

    async def read() -> None:
        async with pool.slot("a") as executor:
            await asyncio.get_running_loop().run_in_executor(executor, gate.wait)

    task = asyncio.create_task(read())
    await until(lambda: pool.stats()["busy"] == 1)
    task.cancel()  # the client went away; the blocking read goes on
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert pool.stats() == {"busy": 1, "admitted": 0}
    waiting = asyncio.create_task(read())
    await until(lambda: pool.stats()["admitted"] == 1)
    assert pool.stats()["busy"] == 1, "a second read got the thread the first one still holds"
    gate.set()
    await waiting
    assert pool.stats() == {"busy": 0, "admitted": 0}


@pytest.fixture
def two_topics(unique_name: str) -> Iterator[list[str]]:
    names = [unique_name + "-a", unique_name + "-b"]
    for name in names:
        create_topic(name)
    yield names
    delete_topics(*names)


async def test_it_starts_no_tail_beyond_the_process_cap_but_lets_viewers_join_one(
    settings: Any, use_clusters: Any, two_topics: list[str]
) -> None:
    from dashboard.core.connections import close_all
    from dashboard.tail.hub import running_tails
    from dashboard.tail.viewers import join_tail

    settings.MQB_TAIL_MAX_RUNNING = 1
    first, second = two_topics
    viewers = [await join_tail("test-kafka", first)]
    try:
        with pytest.raises(Busy, match="MQB_TAIL_MAX_RUNNING=1"):
            await join_tail("test-kafka", second)
        viewers.append(await join_tail("test-kafka", first))  # the running one: no thread
        assert list(running_tails()) == [("topic", "test-kafka", first)]
    finally:
        for viewer in viewers:
            await viewer.leave()
        await close_all()
    assert not running_tails()
