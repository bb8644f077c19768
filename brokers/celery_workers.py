"""Celery workers found by asking them: Celery's ``active_queues`` control broadcast.

Features: one broadcast lists every worker listening on a broker's control
exchange, by hostname (``celery@web-1``), with the queues it consumes (name,
exchange, routing key). It works on any broker kombu speaks; the collector
uses it for Redis brokers, where the broker cannot list its consumers
(workers on RabbitMQ are found from ``/api/consumers`` and their pidbox
queue, see ``brokers/rabbitmq/metrics.py``).

Settings: the broker URL (any kombu URL, secrets included; ``safe_url`` is
what may be shown), ``timeout`` (seconds to connect, and seconds to wait for
replies: a broadcast cannot know how many workers will answer, so every call
waits that long), ``control_exchange`` (Celery's ``control_exchange``, the
namespace of the pidbox; ``celery`` unless the workers' app changed it).

Limitations: blocking (kombu), so callers run it in a thread. Only workers
that answer within ``timeout`` are listed: a worker with the solo pool answers
between tasks, so one busy with a long task is missing from that call (the
caller decides how many misses mean gone). Workers started with remote
control disabled (``worker_enable_remote_control = False``) never answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from celery import Celery
from kombu.exceptions import KombuError
from redis.exceptions import RedisError

from brokers.base import BrokerUnavailable


@dataclass(frozen=True)
class CeleryQueue:
    name: str
    exchange: str
    routing_key: str


@dataclass(frozen=True)
class CeleryWorker:
    """A worker that answered, labelled with its hostname (``name@host``)."""

    hostname: str
    queues: tuple[CeleryQueue, ...]

    @property
    def host(self) -> str:
        """The machine part of ``name@host`` (the whole hostname without an ``@``)."""
        return self.hostname.rpartition("@")[2]


def safe_url(url: str) -> str:
    """``redis://:secret@host:6379/0`` -> ``redis://host:6379/0``: fit to show and log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _queues(raw: Any) -> tuple[CeleryQueue, ...]:
    queues = []
    for q in raw if isinstance(raw, list) else []:
        if not isinstance(q, dict) or not q.get("name"):
            continue
        exchange = q.get("exchange")
        exchange_name = exchange.get("name") if isinstance(exchange, dict) else exchange
        queues.append(
            CeleryQueue(
                name=str(q["name"]),
                exchange=str(exchange_name or ""),
                routing_key=str(q.get("routing_key") or ""),
            )
        )
    return tuple(queues)


class CeleryInspector:
    """Asks the workers of one broker what they consume. One per broker, reused."""

    def __init__(
        self, broker_url: str, *, timeout: float, control_exchange: str = "celery"
    ) -> None:
        self.url = safe_url(broker_url)
        self.timeout = timeout
        self._app = Celery("mqboard-inspect", broker=broker_url, set_as_current=False)
        self._app.conf.update(
            control_exchange=control_exchange,
            broker_connection_timeout=timeout,
            broker_connection_retry=False,
            # redis-py's own timeouts, so a broker that stops answering mid-call
            # raises instead of hanging the thread.
            broker_transport_options={
                "socket_timeout": timeout + 1,
                "socket_connect_timeout": timeout,
                "max_retries": 0,
            },
        )

    def workers(self) -> tuple[CeleryWorker, ...]:
        """Every worker that answered within the timeout (blocking)."""
        try:
            with self._app.connection_for_write() as connection:
                connection.ensure_connection(max_retries=1, interval_start=0, timeout=self.timeout)
                inspect = self._app.control.inspect(timeout=self.timeout, connection=connection)
                replies = inspect.active_queues() or {}
        except (OSError, KombuError, RedisError) as exc:
            raise BrokerUnavailable(f"Celery broker {self.url}: {exc}") from exc
        return tuple(
            CeleryWorker(hostname=str(hostname), queues=_queues(queues))
            for hostname, queues in sorted(replies.items())
        )

    def close(self) -> None:
        self._app.close()
