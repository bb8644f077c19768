"""Shared helpers of the live metrics tests: brokers, a TCP proxy, the collector process.

No tests here; the ``test_metrics_*`` modules import what they need.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import selectors
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
from django.conf import settings

from tests.conftest import GUEST, KAFKA, MGMT, PYTHON, ROOT, free_port
from tests.settings import RUN_ID

T = TypeVar("T")
ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")  # the Origin must be the site the socket was opened on


def wait_for(check: Callable[[], T | None], timeout: float = 20, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy (stats lag: poll, don't sleep)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what or check}; last: {last!r}")


def session_cookie(client: Any, user: Any) -> tuple[bytes, bytes]:
    client.force_login(user)
    value = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={value}".encode())


# -- RabbitMQ through the management API --------------------------------------------


def unique(prefix: str = "q") -> str:
    return f"mqb-metrics-{prefix}-{uuid.uuid4().hex[:8]}"


def mgmt() -> httpx.Client:
    return httpx.Client(base_url=MGMT, auth=GUEST, timeout=10)


def declare(vhost: str, name: str) -> None:
    with mgmt() as http:
        http.put(
            f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}", json={"durable": False}
        ).raise_for_status()


def publish(vhost: str, queue: str, count: int = 1) -> None:
    with mgmt() as http:
        for i in range(count):
            http.post(
                f"/api/exchanges/{quote(vhost, safe='')}/amq.default/publish",
                json={
                    "properties": {},
                    "routing_key": queue,
                    "payload": f"message {i}",
                    "payload_encoding": "string",
                },
            ).raise_for_status()


def ready_of(vhost: str, name: str) -> int | None:
    with mgmt() as http:
        response = http.get(
            f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}",
            params={"columns": "name,messages_ready"},
        )
        return response.json().get("messages_ready") if response.status_code == 200 else None


def wait_for_ready(vhost: str, name: str, count: int) -> None:
    wait_for(lambda: ready_of(vhost, name) == count, what=f"{name} to report {count} ready")


# -- Kafka -----------------------------------------------------------------------------


@functools.cache
def kafka_admin() -> Any:
    """One client for the whole run: results die with the client that asked."""
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": KAFKA})


def create_topic(name: str, partitions: int = 1) -> None:
    from confluent_kafka.admin import NewTopic  # type: ignore[attr-defined]

    futures = kafka_admin().create_topics([NewTopic(name, partitions, 1)], request_timeout=10)
    futures[name].result(timeout=15)


def delete_topics(*names: str) -> None:
    if names:
        for future in kafka_admin().delete_topics(list(names), request_timeout=10).values():
            with contextlib.suppress(Exception):
                future.result(timeout=15)


def produce(topic: str, count: int, *, timestamp_ms: int | None = None, partition: int = 0) -> None:
    from confluent_kafka import Producer

    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 0})
    for i in range(count):
        kwargs: dict[str, Any] = {"partition": partition}
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        producer.produce(topic, value=f"record {i}".encode(), **kwargs)
    assert producer.flush(15) == 0


def commit(group: str, offsets: dict[tuple[str, int], int]) -> None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    request = [
        ConsumerGroupTopicPartitions(
            group, [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        )
    ]
    futures = kafka_admin().alter_consumer_group_offsets(request, request_timeout=10)
    futures[group].result(timeout=15)


def committed(group: str, topic: str, partition: int = 0) -> int | None:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

    request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, partition)])]
    answer = kafka_admin().list_consumer_group_offsets(request, request_timeout=10)[group]
    offset = answer.result(timeout=15).topic_partitions[0].offset
    return None if offset < 0 else offset


def delete_groups(*groups: str) -> None:
    if groups:
        for future in (
            kafka_admin().delete_consumer_groups(list(groups), request_timeout=10).values()
        ):
            with contextlib.suppress(Exception):
                future.result(timeout=15)


# -- a TCP proxy that can play "the broker is down" ---------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target; ``stop`` refuses and cuts connections."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        server.settimeout(0.2)
        self._server = server
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(5)
        if self._server is not None:
            self._server.close()
            self._server = None
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        assert self._server is not None
        while not self._stopping.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while not self._stopping.is_set():
                for key, _ in selector.select(0.2):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()
            for sock in (a, b):
                with contextlib.suppress(OSError):
                    sock.close()


# -- the collector as a real process -----------------------------------------------------


@contextlib.contextmanager
def collector_process(
    env: dict[str, str], *args: str, log_name: str = "collector"
) -> Iterator[subprocess.Popen[bytes]]:
    """``manage.py collect <args>`` with ``env``; stopped with SIGTERM (its clean exit)."""
    log_path = ROOT / "var" / "log" / f"test-{log_name}-{RUN_ID}-{uuid.uuid4().hex[:6]}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [PYTHON, "manage.py", "collect", *args],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        process.log_path = log_path  # type: ignore[attr-defined]
        try:
            yield process
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def log_tail(path: Path, size: int = 3000) -> str:
    with contextlib.suppress(OSError):
        return path.read_text(errors="replace")[-size:]
    return ""


def run_django(env: dict[str, str], code: str) -> Any:
    """Run ``code`` in ``manage.py shell`` against ``env``'s database; it prints JSON."""
    result = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    return json.loads(result.stdout.decode().strip().splitlines()[-1])


def base_env(served_db: dict[str, str], **extra: str) -> dict[str, str]:
    env = dict(served_db)
    env.update(extra)
    env.setdefault("MQB_LOG_LEVEL", "INFO")
    return env


def clusters_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "clusters.toml"
    path.write_text(text)
    return str(path)


def environ_has(name: str) -> bool:
    return bool(os.environ.get(name))
