"""Helpers of the health tests: the collector's check in-process, a proxy that counts
the connections it accepts, and RabbitMQ's own view of its connections."""

from __future__ import annotations

import socket
import threading
from typing import Any
from urllib.parse import quote

import httpx
from asgiref.sync import async_to_sync

from tests.support.metrics import TcpProxy


def collect_once() -> None:
    """One round of the collector's health loop (checks, stores and pushes every cluster)."""
    from dashboard.collector.health import sample_once

    async_to_sync(sample_once)()


class CountingProxy(TcpProxy):
    """A :class:`TcpProxy` that counts the connections it accepts (measured from outside
    the dashboard: every broker connection the dashboard opens through it is one)."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.accepted = 0
        self._count_lock = threading.Lock()

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(256)
        server.settimeout(0.2)
        self._listener = server
        self._server = _CountingSocket(server, self._counted)  # type: ignore[assignment]
        self._stopping.clear()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _counted(self) -> tuple[socket.socket, Any]:
        pair = self._listener.accept()
        with self._count_lock:
            self.accepted += 1
        return pair


class _CountingSocket:
    """A listening socket whose ``accept`` counts (everything else is the socket's)."""

    def __init__(self, sock: socket.socket, accept: Any) -> None:
        self.sock = sock
        self.accept = accept

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


def vhost_connections(vhost: str) -> int:
    """Open AMQP connections to ``vhost``, as RabbitMQ's management API lists them."""
    response = httpx.get(
        f"http://127.0.0.1:15672/api/vhosts/{quote(vhost, safe='')}/connections",
        auth=("guest", "guest"),
        timeout=10,
    )
    response.raise_for_status()
    return len(response.json())


def logged_in(url: str, user: str = "olga", password: str = "browser-pass-1") -> httpx.Client:
    """A keep-alive client logged in to a served dashboard through its login form."""
    http = httpx.Client(base_url=url, timeout=30)
    http.get("/login/").raise_for_status()
    response = http.post(
        "/login/",
        data={
            "username": user,
            "password": password,
            "csrfmiddlewaretoken": http.cookies["csrftoken"],
        },
    )
    assert response.status_code == 302, response.text[:500]
    return http


def cluster_entry(slug: str, amqp_port: int, mgmt_port: int, vhost: str) -> str:
    """A RabbitMQ ``[[cluster]]`` of a clusters file, through the given ports."""
    return (
        "[[cluster]]\n"
        f'slug = "{slug}"\n'
        'kind = "rabbitmq"\n'
        f'name = "{slug}"\n'
        f'amqp_url = "amqp://127.0.0.1:{amqp_port}/{quote(vhost, safe="")}"\n'
        f'management_url = "http://127.0.0.1:{mgmt_port}"\n'
        'username = "guest"\n'
        'password_env = "MQB_TEST_HEALTH_PASSWORD"\n'
        "timeout = 2.0\n"
    )
