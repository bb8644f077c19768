"""Shared helpers of the alert tests: a real local HTTP receiver, samples, rules.

No tests here; the ``test_alerts_*`` modules import what they need.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from brokers.base.metrics import ClusterSample, Point, queue_entity, values_of
from tests.support.metrics import log_tail


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def alerts(self) -> list[dict[str, Any]]:
        """The notifications of a webhook message: its firing, then its resolved ones."""
        body = self.json()
        return [*body["firing"], *body["resolved"]]


@dataclass
class Receiver:
    """What the local server got, and how it answers: ``fail`` answers 503 that many
    more times; ``hang`` holds requests while set, and a request that was held is then
    refused with 503 (as if the receiver had gone down with its sender)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    fail: int = 0
    hang: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ids(self) -> list[str]:
        with self.lock:
            return [r.headers.get("X-Mqboard-Notification-Id", "") for r in self.received]

    def wait_count(self, count: int, timeout: float = 30) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.1)
        raise AssertionError(f"received {len(self.received)} of {count} notifications")


@contextmanager
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on 127.0.0.1 in a thread, recording every POST."""
    state = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with state.lock:
                state.attempts += 1
                failing = state.fail > 0
                if failing:
                    state.fail -= 1
            held = False
            while state.hang.is_set():
                held = True
                time.sleep(0.05)
            if failing or held:
                self.send_response(503)
                self.end_headers()
                return
            with state.lock:
                state.received.append(Received(self.path, dict(self.headers.items()), body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        state.hang.clear()
        server.shutdown()
        server.server_close()


def queue_sample(slug: str, depths: dict[str, int | None], consumers: int = 1) -> ClusterSample:
    """A sample of queues in vhost ``/`` with these depths (for the engine's pure logic)."""
    points = tuple(
        Point("queue", queue_entity("/", name), values_of(depth=depth, consumers=consumers))
        for name, depth in depths.items()
    )
    return ClusterSample(
        slug=slug,
        kind="rabbitmq",
        time=datetime.now(UTC),
        totals=values_of(),
        points=points,
        consumers=None,
        seconds=0.01,
    )


def process_log(process: Any) -> str:
    """The end of the log of a process ``collector_process`` started."""
    return log_tail(process.log_path)


def make_alert(cluster: Any, entity: str, state: str = "firing", **fields: Any) -> Any:
    """An alert row as the engine leaves it (a depth rule's by default), without a rule."""
    from django.utils import timezone

    from dashboard.alerts.engine import fingerprint
    from dashboard.models import Alert

    values: dict[str, Any] = {
        "rule_name": f"deep {entity}",
        "kind": "queue_depth",
        "value": 50.0,
        "started_at": timezone.now(),
        "fired_at": timezone.now() if state == "firing" else None,
        **fields,
    }
    return Alert.objects.create(
        cluster=cluster,
        entity=entity,
        state=state,
        fingerprint=fingerprint(0, cluster.pk, f"{values['kind']}\0{entity}"),
        **values,
    )
