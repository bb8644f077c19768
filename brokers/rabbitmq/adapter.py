"""RabbitMQ adapter: AMQP 0-9-1 through aio-pika, inventory through the management HTTP API.

Features: connect, ping (a real AMQP connection and an answered management
request), cluster overview (version, nodes, object totals); browsing through
``brokers.rabbitmq.inventory`` (paginated queue list, queue detail with
consumers, bindings and dead-letter routes), ``brokers.rabbitmq.topology``
(exchanges, vhosts) and ``brokers.rabbitmq.messages`` (peek, publish, purge).
The adapter keeps one HTTP client and one AMQP connection per vhost it was
asked about, opened on first use.

Connection settings: ``amqp_url`` (``amqp://`` or ``amqps://`` host, port and
vhost, no credentials), ``management_url`` (``http(s)://host:15672``, no
credentials), ``username`` and ``password`` shared by both. A cluster of several
nodes may list the other nodes too (``amqp_failover_urls``,
``management_failover_urls``): connections and requests go to the next node when
one refuses or times out (``connection``, ``http``).

Limitations: counts come from the management plugin's statistics, which lag
the broker by up to its collection interval (5 s by default); callers show the
sample time with every number. Never call the unpaginated ``/api/queues``: it
costs seconds at thousands of queues. Reading messages of classic and quorum
queues is destructive in RabbitMQ (see ``messages``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import aiormq.abc
import aiormq.exceptions
import httpx
from aio_pika.abc import AbstractConnection

from brokers.base import (
    DLQ_NAME_PATTERN,
    Broker,
    BrokerBase,
    BrokerError,
    ClusterConfig,
    ConfigError,
    DeadLetterQueue,
    Node,
    Overview,
)
from brokers.rabbitmq import inventory, messages, topology
from brokers.rabbitmq.connection import connect_amqp, open_connection
from brokers.rabbitmq.errors import amqp_errors
from brokers.rabbitmq.http import ManagementClient
from brokers.rabbitmq.models import (
    ExchangeDetail,
    ExchangePage,
    OutgoingMessage,
    PeekPlan,
    PeekResult,
    PublishResult,
    PurgeResult,
    QueueDetail,
    QueuePage,
    QueueQuery,
    QueueRow,
    Vhost,
)
from brokers.rabbitmq.values import quote_name


def quote_vhost(vhost: str) -> str:
    """Quote a vhost or name for a management API path: ``/`` becomes ``%2F``."""
    return quote_name(vhost, "vhost")


class RabbitMQBroker(ManagementClient, BrokerBase):
    kind: ClassVar[str] = "rabbitmq"

    def __init__(self, config: ClusterConfig) -> None:
        if not config.management_url:
            raise ConfigError(f"cluster {config.slug!r}: management_url is required for RabbitMQ")
        if not config.amqp_url:
            raise ConfigError(f"cluster {config.slug!r}: amqp_url is required for RabbitMQ")
        self.config = config
        self._http: httpx.AsyncClient | None = None
        self._amqp: AbstractConnection | None = None
        # Browsing reaches queues in every vhost; AMQP connections are per vhost.
        self._vhost_amqp: dict[str, aiormq.abc.AbstractConnection] = {}
        self._amqp_lock = asyncio.Lock()

    # -- lifecycle -------------------------------------------------------

    async def connect(self) -> None:
        self._open_http()
        await self._open_amqp()

    async def close(self) -> None:
        connections = [self._amqp, *self._vhost_amqp.values()]
        self._amqp = None
        self._vhost_amqp = {}
        await self.close_http()
        for amqp in connections:
            if amqp is not None:
                # The connection may already be gone; closing is best effort.
                with contextlib.suppress(aiormq.exceptions.AMQPError, OSError, TimeoutError):
                    await amqp.close()

    # -- reads -----------------------------------------------------------

    async def ping(self) -> None:
        amqp = self._amqp
        if amqp is None or amqp.is_closed:
            await self._open_amqp()
        elif not amqp.connected.is_set():
            # Lost and still reconnecting to the same node: open one on whichever
            # node answers now (its own node may be down for good).
            self._amqp = None
            with contextlib.suppress(aiormq.exceptions.AMQPError, OSError, TimeoutError):
                async with asyncio.timeout(1):
                    await amqp.close()
            await self._open_amqp()
        await self.management_get("/api/overview", params={"columns": "rabbitmq_version"})

    async def overview(self) -> Overview:
        data, nodes = await asyncio.gather(
            self.management_get("/api/overview"),
            self.management_get(
                "/api/nodes", params={"columns": "name,running,type,mem_alarm,disk_free_alarm"}
            ),
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
                Node(
                    name=str(n.get("name")),
                    running=bool(n.get("running", False)),
                    alarms=_alarms(n),
                )
                for n in (nodes if isinstance(nodes, list) else [])
                if isinstance(n, dict)
            ),
            checked_at=datetime.now(UTC),
            queues=_int_or_none(totals.get("queues")),
            exchanges=_int_or_none(totals.get("exchanges")),
            connections=_int_or_none(totals.get("connections")),
            consumers=_int_or_none(totals.get("consumers")),
            messages=_int_or_none(queue_totals.get("messages")),
        )

    async def dead_letter_queues(
        self, limit: int = 50, *, vhost: str | None = None
    ) -> tuple[DeadLetterQueue, ...]:
        # One paginated, trimmed request: never the unpaginated /api/queues.
        path = "/api/queues" if vhost is None else f"/api/queues/{quote_vhost(vhost)}"
        page = await self.management_get(
            path,
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

    # -- browsing (implemented in inventory, topology, messages) -----------

    async def queue_page(self, query: QueueQuery) -> QueuePage:
        return await inventory.queue_page(self, query)

    async def queue_summary(self, vhost: str, name: str) -> QueueRow:
        return await inventory.queue_summary(self, vhost, name)

    async def queue_detail(self, vhost: str, name: str, *, scan_limit: int = 2000) -> QueueDetail:
        """``scan_limit`` bounds the search for queues that dead-letter into this one."""
        return await inventory.queue_detail(self, vhost, name, scan_limit)

    async def exchange_page(
        self, vhost: str | None, *, page: int = 1, page_size: int = 100, name: str = ""
    ) -> ExchangePage:
        return await topology.exchange_page(self, vhost, page=page, page_size=page_size, name=name)

    async def exchange_detail(self, vhost: str, name: str) -> ExchangeDetail:
        return await topology.exchange_detail(self, vhost, name)

    async def vhosts(self) -> tuple[Vhost, ...]:
        return await topology.vhosts(self)

    async def peek(
        self, vhost: str, queue: str, count: int, *, max_bytes: int = 256 << 20
    ) -> PeekResult:
        """Read the first ``count`` messages; destructive except on streams (see the module)."""
        return await messages.peek(self, vhost, queue, count, max_bytes)

    async def peek_plan(self, vhost: str, queue: str) -> PeekPlan:
        """Whether a peek would change the queue, and the delivery limit that refuses it."""
        return await messages.peek_plan(self, vhost, queue)

    async def publish(self, vhost: str, message: OutgoingMessage) -> PublishResult:
        return await messages.publish(self, vhost, message)

    async def purge(self, vhost: str, queue: str) -> PurgeResult:
        return await messages.purge(self, vhost, queue)

    # -- AMQP --------------------------------------------------------------

    def default_vhost(self) -> str:
        """The vhost named by ``amqp_url`` (``/`` when it names none)."""
        path = urlsplit(self.config.amqp_url).path
        return unquote(path[1:]) if path.startswith("/") and len(path) > 1 else "/"

    async def amqp_connection(self, vhost: str | None = None) -> aiormq.abc.AbstractConnection:
        """An open AMQP connection to ``vhost`` (default: the URL's) for browsing, reused
        between calls and reopened when it was lost."""
        vhost = self.default_vhost() if vhost is None else vhost
        connection = self._vhost_amqp.get(vhost)
        if connection is not None and not connection.is_closed:
            return connection
        async with self._amqp_lock:
            connection = self._vhost_amqp.get(vhost)
            if connection is None or connection.is_closed:
                connection = await open_connection(
                    self.config, vhost, f"mqboard {self.config.slug} (browse)"
                )
                self._vhost_amqp[vhost] = connection
        return connection

    @contextlib.asynccontextmanager
    async def amqp_channel(
        self, vhost: str | None = None, *, confirms: bool = False
    ) -> AsyncIterator[aiormq.abc.AbstractChannel]:
        """A fresh channel, closed afterwards. A channel error (which also closes the
        channel on the broker) becomes a BrokerError; ``confirms`` turns on publisher
        confirms with unroutable messages raising :class:`Unroutable`."""
        where = f"vhost {self.default_vhost() if vhost is None else vhost!r}"
        with amqp_errors(where, self.config.timeout):
            connection = await self.amqp_connection(vhost)
            channel = await connection.channel(
                publisher_confirms=confirms, on_return_raises=confirms
            )
        try:
            with amqp_errors(where, self.config.timeout):
                yield channel
        finally:
            if not channel.is_closed:
                with contextlib.suppress(aiormq.exceptions.AMQPError, OSError, TimeoutError):
                    await channel.close()

    async def _open_amqp(self) -> AbstractConnection:
        self._amqp = await connect_amqp(self.config, self.default_vhost())
        return self._amqp


def rabbitmq_adapter(broker: Broker) -> RabbitMQBroker:
    """``broker`` as the RabbitMQ adapter it is: the capabilities of the RabbitMQ kind
    are only ever given the adapter the kind made (``brokers.registry.make_broker``)."""
    if not isinstance(broker, RabbitMQBroker):
        raise TypeError(f"a RabbitMQ capability was given a {type(broker).__name__}")
    return broker


def _int_or_none(value: object) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _alarms(node: dict[str, Any]) -> tuple[str, ...]:
    """The resource alarms a node reports: ``memory`` and ``disk``."""
    return tuple(
        name
        for name, key in (("memory", "mem_alarm"), ("disk", "disk_free_alarm"))
        if node.get(key) is True
    )
