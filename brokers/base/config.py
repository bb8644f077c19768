"""Where a cluster is and how to log in: :class:`ClusterConfig`, with secrets as :class:`Secret`.

Configs are frozen: an adapter never changes the config it was created from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from urllib.parse import unquote, urlsplit, urlunsplit


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
    credentials), ``username`` and ``password``; a cluster of several nodes may
    add the other nodes' URLs in ``amqp_failover_urls`` and
    ``management_failover_urls``, tried in order when a node refuses or times out, and
    ``prometheus_urls``, every node's ``rabbitmq_prometheus`` endpoint: when given, the
    collector reads the queues' numbers there (``brokers.rabbitmq.prometheus``). Kafka uses
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
    amqp_failover_urls: tuple[str, ...] = ()
    management_failover_urls: tuple[str, ...] = ()
    prometheus_urls: tuple[str, ...] = ()

    @property
    def amqp_urls(self) -> tuple[str, ...]:
        """Every AMQP URL of the cluster, ``amqp_url`` first."""
        return tuple(u for u in (self.amqp_url, *self.amqp_failover_urls) if u)

    @property
    def management_urls(self) -> tuple[str, ...]:
        """Every management API URL of the cluster, ``management_url`` first."""
        return tuple(u for u in (self.management_url, *self.management_failover_urls) if u)

    @property
    def display_name(self) -> str:
        return self.name or self.slug

    @property
    def address(self) -> str:
        """Where the cluster is, safe to show: never contains credentials."""
        return self.management_url or self.amqp_url or self.bootstrap_servers


def split_credentials(url: str) -> tuple[str, str, str]:
    """``amqp://u:p@h/v`` -> (``amqp://h/v``, ``u``, ``p``): URLs we keep are safe to show."""
    parts = urlsplit(url)
    user = unquote(parts.username or "")
    password = unquote(parts.password or "")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return (
        urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment)),
        user,
        password,
    )
