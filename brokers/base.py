"""The contract every broker adapter fulfils.

An adapter wraps one cluster. It is created from a :class:`ClusterConfig`,
opened with :meth:`Broker.connect`, and closed with :meth:`Broker.close`; it can
also be used as an ``async with`` block. Everything that crosses this boundary
is a frozen dataclass, and every failure is a :class:`BrokerError` subclass, so
callers never see a library's own exception types.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType, TracebackType
from typing import ClassVar, Protocol, Self, runtime_checkable


class Secret:
    """A string that never shows itself in ``repr``, ``str``, logs or templates."""

    __slots__ = ("_value",)

    def __init__(self, value: str = "") -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__


def _frozen(mapping: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class ClusterConfig:
    """Where a cluster is and how to log in. Secrets are :class:`Secret` values.

    RabbitMQ uses ``amqp_url`` and ``management_url`` (both without
    credentials), ``username`` and ``password``. Kafka uses
    ``bootstrap_servers`` and ``client_options``: librdkafka settings such as
    ``security.protocol`` or ``sasl.mechanism`` passed through unchanged, with
    secret ones (``sasl.password``, ``ssl.key.password``) in ``secret_options``.
    """

    slug: str
    kind: str
    name: str = ""
    amqp_url: str = ""
    management_url: str = ""
    username: str = ""
    password: Secret = field(default_factory=Secret)
    bootstrap_servers: str = ""
    client_options: Mapping[str, str] = field(default_factory=_frozen)
    secret_options: Mapping[str, Secret] = field(default_factory=dict)
    timeout: float = 5.0
    protected: bool = False
    read_only: bool = False
    verify_tls: bool = True

    @property
    def display_name(self) -> str:
        return self.name or self.slug

    @property
    def address(self) -> str:
        """Where the cluster is, safe to show: never contains credentials."""
        return self.management_url or self.amqp_url or self.bootstrap_servers


# -- results ---------------------------------------------------------------


@dataclass(frozen=True)
class Node:
    name: str
    running: bool = True
    host: str = ""
    port: int | None = None
    rack: str | None = None
    is_controller: bool = False


@dataclass(frozen=True)
class Overview:
    """A cluster at a glance. ``None`` means unknown or not applicable, never 0."""

    kind: str
    product: str
    version: str | None
    cluster_name: str | None
    nodes: tuple[Node, ...]
    checked_at: datetime
    queues: int | None = None
    exchanges: int | None = None
    connections: int | None = None
    topics: int | None = None
    partitions: int | None = None
    consumer_groups: int | None = None
    consumers: int | None = None
    messages: int | None = None


@dataclass(frozen=True)
class DeadLetterQueue:
    """A queue or topic that holds dead letters, found by name or by a dead-letter exchange.

    ``depth`` is the number of messages waiting (RabbitMQ) or the sum of
    high - low watermarks (Kafka); None when the broker did not say.
    """

    name: str
    depth: int | None
    vhost: str | None = None
    checked_at: datetime | None = None


DLQ_NAME_PATTERN = r"(?i)(^|[._-])(dlq|dlt)$"
"""Names that say "dead letters": ``dlq``, ``orders.dlq``, ``orders-dlq``, ``orders.DLT``."""


# -- errors ------------------------------------------------------------------


class BrokerError(Exception):
    """Base of every error an adapter raises. ``message`` is fit for users."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        # A permanent error (bad password, wrong protocol) will not go away on
        # retry; a transient one (broker restarting) may.
        self.permanent = permanent


class BrokerUnavailable(BrokerError):
    code = "unavailable"


class BrokerAuthError(BrokerError):
    code = "auth_failed"

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message, permanent=permanent)


class BrokerTimeout(BrokerError):
    code = "timeout"


class NotSupported(BrokerError):
    code = "not_supported"

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message, permanent=permanent)


class ConfigError(BrokerError):
    """The cluster's configuration is wrong; nothing was sent to a broker."""

    code = "config_error"

    def __init__(self, message: str, *, permanent: bool = True) -> None:
        super().__init__(message, permanent=permanent)


class NotFound(BrokerError):
    code = "not_found"


# -- the protocol ------------------------------------------------------------


@runtime_checkable
class Broker(Protocol):
    kind: ClassVar[str]
    config: ClusterConfig

    async def connect(self) -> None:
        """Open the connections the adapter needs; raise a BrokerError if it cannot."""

    async def close(self) -> None:
        """Release every connection; safe to call twice or after a failed connect."""

    async def ping(self) -> None:
        """Return when the cluster answers a real request; raise a BrokerError otherwise."""

    async def overview(self) -> Overview:
        """Version, nodes and counts of the whole cluster."""

    async def dead_letter_queues(
        self, limit: int = 50, *, vhost: str | None = None
    ) -> tuple[DeadLetterQueue, ...]:
        """Queues or topics named like dead-letter queues, with their depth.

        ``vhost`` narrows a RabbitMQ search to one vhost; other kinds ignore it.
        """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class BrokerBase:
    """Shared ``async with`` plumbing for adapters."""

    async def connect(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
