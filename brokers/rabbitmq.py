"""RabbitMQ adapter: AMQP 0-9-1 through aio-pika, inventory through the management HTTP API.

Features: connect, ping (a real AMQP connection and an answered management
request), cluster overview (version, nodes, object totals).

Connection settings: ``amqp_url`` (``amqp://`` or ``amqps://`` host, port and
vhost, no credentials), ``management_url`` (``http(s)://host:15672``, no
credentials), ``username`` and ``password`` shared by both.

Limitations: counts come from the management plugin's statistics, which lag
the broker by up to its collection interval (5 s by default); callers show the
sample time with every number. Never call the unpaginated ``/api/queues``: it
costs seconds at thousands of queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import aio_pika
import aiormq.exceptions
import httpx
from aio_pika.abc import AbstractRobustConnection

from brokers.base import (
    DLQ_NAME_PATTERN,
    BrokerAuthError,
    BrokerBase,
    BrokerError,
    BrokerTimeout,
    BrokerUnavailable,
    ClusterConfig,
    ConfigError,
    DeadLetterQueue,
    Node,
    NotFound,
    Overview,
)

USER_AGENT = "mqboard"


def quote_vhost(vhost: str) -> str:
    """Quote a vhost or name for a management API path: ``/`` becomes ``%2F``."""
    return quote(vhost, safe="")


class RabbitMQBroker(BrokerBase):
    kind: ClassVar[str] = "rabbitmq"

    def __init__(self, config: ClusterConfig) -> None:
        if not config.management_url:
            raise ConfigError(f"cluster {config.slug!r}: management_url is required for RabbitMQ")
        if not config.amqp_url:
            raise ConfigError(f"cluster {config.slug!r}: amqp_url is required for RabbitMQ")
        self.config = config
        self._http: httpx.AsyncClient | None = None
        self._amqp: AbstractRobustConnection | None = None

    # -- lifecycle -------------------------------------------------------

    async def connect(self) -> None:
        self._open_http()
        await self._open_amqp()

    async def close(self) -> None:
        http, self._http = self._http, None
        amqp, self._amqp = self._amqp, None
        if http is not None:
            await http.aclose()
        if amqp is not None:
            # The connection may already be gone; closing is best effort.
            with contextlib.suppress(aiormq.exceptions.AMQPError, OSError, TimeoutError):
                await amqp.close()

    # -- reads -----------------------------------------------------------

    async def ping(self) -> None:
        if self._amqp is None or self._amqp.is_closed:
            await self._open_amqp()
        await self.management_get("/api/overview", params={"columns": "rabbitmq_version"})

    async def overview(self) -> Overview:
        data, nodes = await asyncio.gather(
            self.management_get("/api/overview"),
            self.management_get("/api/nodes", params={"columns": "name,running,type"}),
        )
        if not isinstance(data, dict) or "rabbitmq_version" not in data:
            raise BrokerError(
                f"{self.config.management_url} answered, but not like a RabbitMQ management API",
                permanent=True,
            )
        totals = data.get("object_totals") or {}
        queue_totals = data.get("queue_totals") or {}
        return Overview(
            kind=self.kind,
            product=data.get("product_name") or "RabbitMQ",
            version=data.get("rabbitmq_version"),
            cluster_name=data.get("cluster_name"),
            nodes=tuple(
                Node(name=str(n.get("name")), running=bool(n.get("running", False)))
                for n in (nodes if isinstance(nodes, list) else [])
            ),
            checked_at=datetime.now(UTC),
            queues=_int_or_none(totals.get("queues")),
            exchanges=_int_or_none(totals.get("exchanges")),
            connections=_int_or_none(totals.get("connections")),
            consumers=_int_or_none(totals.get("consumers")),
            messages=_int_or_none(queue_totals.get("messages")),
        )

    async def dead_letter_queues(self, limit: int = 50) -> tuple[DeadLetterQueue, ...]:
        # One paginated, trimmed request: never the unpaginated /api/queues.
        page = await self.management_get(
            "/api/queues",
            params={
                "page": "1",
                "page_size": str(limit),
                "name": DLQ_NAME_PATTERN,
                "use_regex": "true",
                "columns": "name,vhost,messages",
                "disable_stats": "true",
                "enable_queue_totals": "true",
                "sort": "name",
            },
        )
        now = datetime.now(UTC)
        items = page.get("items", []) if isinstance(page, dict) else []
        return tuple(
            DeadLetterQueue(
                name=str(q.get("name", "")),
                vhost=str(q.get("vhost", "")),
                depth=_int_or_none(q.get("messages")),
                checked_at=now,
            )
            for q in items
        )

    async def management_get(self, path: str, params: dict[str, str] | None = None) -> Any:
        """GET a management API path and return its JSON; errors become BrokerErrors."""
        return await self._management("GET", path, params=params)

    async def management_put(self, path: str, body: Any) -> Any:
        return await self._management("PUT", path, json=body)

    async def management_delete(self, path: str) -> Any:
        return await self._management("DELETE", path)

    # -- internals -------------------------------------------------------

    def _open_http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(
                base_url=self.config.management_url.rstrip("/"),
                auth=(self.config.username, self.config.password.reveal()),
                timeout=httpx.Timeout(self.config.timeout),
                headers={"User-Agent": USER_AGENT},
                verify=self.config.verify_tls,
                follow_redirects=False,
            )
        return self._http

    async def _management(self, method: str, path: str, **kwargs: Any) -> Any:
        client = self._open_http()
        where = f"management API at {self.config.management_url}"
        try:
            response = await client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise BrokerTimeout(
                f"{where} did not answer within {self.config.timeout:g} s"
            ) from None
        except httpx.ConnectError as exc:
            raise BrokerUnavailable(f"{where} is unreachable: {_reason(exc)}") from None
        except (httpx.RemoteProtocolError, httpx.DecodingError):
            raise BrokerError(
                f"{where} does not speak HTTP: is the port the management port (15672),"
                " not the AMQP one?",
                permanent=True,
            ) from None
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(f"{where} failed: {_reason(exc)}") from None
        if response.status_code == 401:
            raise BrokerAuthError(
                f"{where} refused user {self.config.username!r}: wrong username or password"
            )
        if response.status_code == 403:
            raise BrokerAuthError(
                f"{where}: user {self.config.username!r} lacks the management tag for {path}"
            )
        if response.status_code == 404:
            raise NotFound(f"{where}: {path} not found")
        if response.status_code >= 400:
            raise BrokerError(
                f"{where} answered HTTP {response.status_code} for {method} {path}: "
                f"{response.text[:200]}"
            )
        if response.status_code == 204 or not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise BrokerError(
                f"{where} answered with something that is not JSON: is it really the"
                " RabbitMQ management plugin?",
                permanent=True,
            ) from None

    async def _open_amqp(self) -> AbstractRobustConnection:
        url = urlsplit(self.config.amqp_url)
        where = f"AMQP at {url.hostname}:{url.port or (5671 if url.scheme == 'amqps' else 5672)}"
        ssl_context = None
        if url.scheme == "amqps":
            ssl_context = ssl.create_default_context()
            if not self.config.verify_tls:
                ssl_context.check_hostname = False
                ssl_context.verify_mode = ssl.CERT_NONE
        vhost = url.path[1:] if url.path.startswith("/") and len(url.path) > 1 else "/"
        try:
            # connect_robust reconnects by itself after a broker restart, but
            # its first connection must succeed within the timeout.
            connection = await asyncio.wait_for(
                aio_pika.connect_robust(
                    host=url.hostname or "localhost",
                    port=url.port or (5671 if url.scheme == "amqps" else 5672),
                    login=self.config.username,
                    password=self.config.password.reveal(),
                    virtualhost=vhost,
                    ssl=ssl_context is not None,
                    ssl_context=ssl_context,
                    timeout=self.config.timeout,
                    client_properties={"connection_name": f"mqboard {self.config.slug}"},
                ),
                timeout=self.config.timeout + 1,
            )
        except aiormq.exceptions.ProbableAuthenticationError:
            raise BrokerAuthError(
                f"{where} refused user {self.config.username!r}: wrong username or password"
            ) from None
        except aiormq.exceptions.AMQPConnectionError as exc:
            raise BrokerUnavailable(f"{where} is unreachable: {_reason(exc)}") from None
        except TimeoutError:
            raise BrokerTimeout(
                f"{where} did not complete the AMQP handshake within {self.config.timeout:g} s"
            ) from None
        except OSError as exc:
            raise BrokerUnavailable(f"{where} is unreachable: {_reason(exc)}") from None
        self._amqp = connection
        return connection


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "ConnectionRefused" in text or "Errno 111" in text:
        return "connection refused (is the broker running and the port right?)"
    return text[:200]
