"""Helpers of the RabbitMQ browser tests: queues, messages and polling on the real broker.

Everything happens in the run's own vhost (``rabbitmq_vhost``) or in a vhost a
test creates and deletes, under names made unique per test.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import quote

import httpx

from tests.conftest import GUEST, MGMT
from tests.settings import RUN_ID

T = TypeVar("T")

# Every kind of awkward name: slash, percent, space, unicode, markup.
ODD = "a/b %2F ü <script>alert(1)</script>"


def q(name: str) -> str:
    return quote(name, safe="")


def mgmt() -> httpx.Client:
    return httpx.Client(base_url=MGMT, auth=GUEST, timeout=20)


def unique(prefix: str = "q") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def declare(vhost: str, name: str, arguments: dict[str, Any] | None = None, **flags: Any) -> None:
    body = {"durable": flags.get("durable", False), "auto_delete": False}
    body["arguments"] = arguments or {}
    with mgmt() as http:
        http.put(f"/api/queues/{q(vhost)}/{q(name)}", json=body).raise_for_status()


def delete_queue(vhost: str, name: str) -> None:
    with mgmt() as http:
        http.delete(f"/api/queues/{q(vhost)}/{q(name)}")


def declare_exchange(vhost: str, name: str, kind: str = "direct") -> None:
    with mgmt() as http:
        http.put(
            f"/api/exchanges/{q(vhost)}/{q(name)}", json={"type": kind, "durable": False}
        ).raise_for_status()


def bind(vhost: str, exchange: str, queue: str, key: str) -> None:
    with mgmt() as http:
        http.post(
            f"/api/bindings/{q(vhost)}/e/{q(exchange)}/q/{q(queue)}", json={"routing_key": key}
        ).raise_for_status()


def publish(vhost: str, queue: str, *bodies: str, properties: dict[str, Any] | None = None) -> None:
    """Publish text bodies to ``queue`` through the default exchange (management API)."""
    with mgmt() as http:
        for body in bodies:
            response = http.post(
                f"/api/exchanges/{q(vhost)}/amq.default/publish",
                json={
                    "properties": properties or {},
                    "routing_key": queue,
                    "payload": body,
                    "payload_encoding": "string",
                },
            )
            response.raise_for_status()
            assert response.json()["routed"], queue


def queue_info(vhost: str, name: str) -> dict[str, Any]:
    with mgmt() as http:
        response = http.get(f"/api/queues/{q(vhost)}/{q(name)}")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


def wait_for(check: Callable[[], T | None], timeout: float = 15, what: str = "") -> T:
    """Poll ``check`` until it returns something truthy (statistics lag up to 5 s)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.25)


def wait_for_depth(vhost: str, name: str, ready: int) -> None:
    wait_for(
        lambda: queue_info(vhost, name).get("messages_ready") == ready,
        what=f"{name} to show {ready} ready",
    )


def drain(vhost: str, name: str) -> list[dict[str, Any]]:
    """Take (and ack) every message of a queue; returns them with their properties."""
    taken: list[dict[str, Any]] = []
    with mgmt() as http:
        while True:
            response = http.post(
                f"/api/queues/{q(vhost)}/{q(name)}/get",
                json={"count": 100, "ackmode": "ack_requeue_false", "encoding": "base64"},
            )
            response.raise_for_status()
            batch = response.json()
            if not batch:
                return taken
            taken.extend(batch)


@contextmanager
def odd_vhost() -> Iterator[str]:
    """A vhost whose name has a slash, a percent sign, a space, unicode and markup."""
    vhost = f"mqb-test-{RUN_ID}-{uuid.uuid4().hex[:6]} {ODD}"
    with mgmt() as http:
        http.put(f"/api/vhosts/{q(vhost)}").raise_for_status()
        http.put(
            f"/api/permissions/{q(vhost)}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
        try:
            yield vhost
        finally:
            http.delete(f"/api/vhosts/{q(vhost)}")
