"""Every AMQP connection mqboard opens, the one TLS context they use, and AMQP wire helpers.

Three kinds of connection, all to the cluster's ``amqp_url`` host and port (or
another node's, see Failover)
(``amqps`` means TLS, built by :func:`tls_context`), with ``username`` and
``password``, within the cluster's ``timeout``:

* :func:`connect_amqp`: the adapter's long-lived aio-pika connection
  (``connect_robust``: it reconnects by itself after a broker restart);
* :func:`open_connection`: a plain aiormq connection with the vhost set
  directly, for browsing (one per vhost, kept by the adapter), moves and bulk
  requeues. aio-pika and aiormq take the vhost from the URL path and turn every
  ``%2F`` in it into ``/``, so a vhost whose name contains the text ``%2F``
  could not be opened through a URL at all. It never reconnects: a move must
  not silently carry on after RabbitMQ requeued its unacked messages;
* :func:`connect`: a plain (not auto-reconnecting) aio-pika connection to one
  vhost, for dead-letter capture and single requeues (the caller restarts).

All three turn a failure to open into the same typed errors (:func:`connect_errors`).

Failover: a cluster may list several nodes (``config.amqp_urls``). Every
connection is opened on the first node that accepts it, starting with the node
that last did (:func:`on_some_node`); a node that refuses, is unreachable or
times out hands the attempt to the next. An open connection stays on its node:
when that node goes, the connection is lost like any other and the next one
opened goes to a live node. Errors name host and port only, never credentials.

pamqp refuses queue and exchange names outside the AMQP spec's
``^[a-zA-Z0-9-_.:@#,/+ ]*$`` before anything is sent, while RabbitMQ accepts
any UTF-8 name (the management API creates them too). A dashboard must reach
every queue that exists, so :func:`accept_every_entity_name` relaxes that
client-side check to what the broker accepts. It changes pamqp's module-level
table, so it applies to every aio-pika/aiormq user in the process: it only
stops refusing names the broker takes.

:class:`Session` is what the modules that work over AMQP need from the adapter,
so that they never import the adapter that calls them.

Wire helpers: :data:`PROPERTY_ATTRS` and :func:`properties_of` (AMQP basic
properties by our names), :func:`publish_method_frame` and
:func:`publish_frames` (publishes marshalled by hand, written as one payload),
:func:`settle_confirms_in_order` (fast settling of "multiple" confirms).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import struct
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol, TypeVar
from urllib.parse import SplitResult, urlsplit

import aio_pika
import aiormq
import aiormq.abc
import aiormq.exceptions
import pamqp.constants
import pamqp.frame
from aio_pika.abc import AbstractConnection
from aiormq import Channel
from pamqp.commands import Basic
from pamqp.header import ContentHeader
from yarl import URL

from brokers.base import (
    BrokerAuthError,
    BrokerTimeout,
    BrokerUnavailable,
    ClusterConfig,
    ConfigError,
)
from brokers.rabbitmq.errors import reason
from brokers.rabbitmq.models import ManagementAPI

_ANY_NAME = re.compile(r".*", re.DOTALL)
T = TypeVar("T")
log = logging.getLogger(__name__)


class Session(ManagementAPI, Protocol):
    """What peeks, publishes, purges and tails need from the adapter: its config, the
    management API and its AMQP connections (see ``RabbitMQBroker``)."""

    config: ClusterConfig

    async def amqp_connection(self, vhost: str | None = None) -> aiormq.abc.AbstractConnection: ...

    def amqp_channel(
        self, vhost: str | None = None, *, confirms: bool = False
    ) -> AbstractAsyncContextManager[aiormq.abc.AbstractChannel]: ...


def accept_every_entity_name() -> None:
    """Let pamqp send any queue or exchange name RabbitMQ accepts (see the docstring)."""
    for domain in ("queue-name", "exchange-name"):
        pamqp.constants.DOMAIN_REGEX[domain] = _ANY_NAME


def tls_context(config: ClusterConfig, url: str | None = None) -> ssl.SSLContext | None:
    """The TLS context for an ``amqps`` URL (None for ``amqp``); ``verify_tls`` off skips checks.

    ``url`` is the node's URL (default: ``amqp_url``)."""
    if urlsplit(config.amqp_url if url is None else url).scheme != "amqps":
        return None
    context = ssl.create_default_context()
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _endpoint(url: str) -> tuple[SplitResult, int]:
    parts = urlsplit(url)
    return parts, parts.port or (5671 if parts.scheme == "amqps" else 5672)


# -- failover between nodes ---------------------------------------------------------

_last_good: dict[tuple[str, ...], str] = {}
"""Per list of node URLs, the one that last opened a connection: tried first next time."""


def node_order(urls: tuple[str, ...]) -> list[str]:
    """``urls`` starting at the one that answered last, then on round the list."""
    good = _last_good.get(urls)
    if good is None or good not in urls:
        return list(urls)
    start = urls.index(good)
    return [*urls[start:], *urls[:start]]


async def on_some_node(
    config: ClusterConfig, vhost: str, open_one: Callable[[str], Awaitable[T]]
) -> T:
    """``open_one(url)`` on the first AMQP node that accepts it.

    A node that refuses, is unreachable or times out (``BrokerUnavailable``,
    ``BrokerTimeout``) passes the attempt to the next; wrong credentials or a
    refused vhost stop at once (every node would answer the same). When every
    node fails, the last failure is raised, naming how many nodes were tried.
    """
    urls = config.amqp_urls
    if not urls:
        raise ConfigError(f"cluster {config.slug!r}: amqp_url is required for RabbitMQ")
    failure: BrokerUnavailable | BrokerTimeout | None = None
    for url in node_order(urls):
        try:
            opened = await open_one(url)
        except (BrokerUnavailable, BrokerTimeout) as exc:
            if len(urls) > 1:
                log.warning("cluster %s: %s; trying the next node", config.slug, exc.message)
            failure = exc
            continue
        _last_good[urls] = url
        return opened
    assert failure is not None
    if len(urls) == 1:
        raise failure
    raise type(failure)(
        f"none of the {len(urls)} AMQP nodes answered; the last: {failure.message}"
    ) from None


# -- connections ---------------------------------------------------------------------


async def open_connection(
    config: ClusterConfig, vhost: str, name: str
) -> aiormq.abc.AbstractConnection:
    """A plain aiormq connection to ``vhost`` (any name); ``name`` is the connection_name.

    Opened on the first node of ``config.amqp_urls`` that accepts it."""
    accept_every_entity_name()

    async def open_one(node_url: str) -> aiormq.abc.AbstractConnection:
        url, port = _endpoint(node_url)
        address = URL.build(
            scheme=url.scheme or "amqp",
            user=config.username,
            password=config.password.reveal(),
            host=url.hostname or "localhost",
            port=port,
            path="/",
        )
        connection = aiormq.Connection(
            address,
            context=tls_context(config, node_url),
            client_properties={"connection_name": name},
        )
        connection.vhost = vhost  # not through the URL: see the module docstring
        with connect_errors(config, vhost, node_url):
            async with asyncio.timeout(config.timeout + 1):
                await connection.connect()
        return connection

    return await on_some_node(config, vhost, open_one)


async def connect_amqp(config: ClusterConfig, vhost: str) -> AbstractConnection:
    """The adapter's long-lived aio-pika connection to the URL's vhost (``connect``/``ping``)."""
    # connect_robust reconnects by itself after a broker restart, but its
    # first connection must succeed within the timeout.
    return await _aio_pika(config, vhost, f"mqboard {config.slug}", robust=True)


async def connect(config: ClusterConfig, vhost: str) -> AbstractConnection:
    """A plain (not auto-reconnecting) connection: the caller restarts capture on failure."""
    return await _aio_pika(config, vhost, f"mqboard capture {config.slug}", robust=False)


async def _aio_pika(
    config: ClusterConfig, vhost: str, name: str, *, robust: bool
) -> AbstractConnection:
    """An aio-pika connection to ``vhost`` named ``name``, opened within the timeout on the
    first node of ``config.amqp_urls`` that accepts it."""
    opener = aio_pika.connect_robust if robust else aio_pika.connect

    async def open_one(node_url: str) -> AbstractConnection:
        url, port = _endpoint(node_url)
        context = tls_context(config, node_url)
        with connect_errors(config, vhost, node_url):
            async with asyncio.timeout(config.timeout + 1):
                return await opener(
                    host=url.hostname or "localhost",
                    port=port,
                    login=config.username,
                    password=config.password.reveal(),
                    virtualhost=vhost,
                    ssl=context is not None,
                    ssl_context=context,
                    timeout=config.timeout,
                    client_properties={"connection_name": name},
                )

    return await on_some_node(config, vhost, open_one)


@contextlib.contextmanager
def connect_errors(config: ClusterConfig, vhost: str, url: str) -> Iterator[None]:
    parts, port = _endpoint(url)
    where = f"AMQP at {parts.hostname}:{port}"
    try:
        yield
    except aiormq.exceptions.ProbableAuthenticationError:
        raise BrokerAuthError(
            f"{where} refused user {config.username!r}: wrong username or password"
            f" (or no access to vhost {vhost!r})"
        ) from None
    except aiormq.exceptions.AMQPConnectionError as exc:
        if "NOT_ALLOWED" in str(exc) or "access to vhost" in str(exc):
            raise BrokerAuthError(
                f"{where}: user {config.username!r} may not open vhost {vhost!r}"
            ) from None
        raise BrokerUnavailable(f"{where} is unreachable: {reason(exc)}") from None
    except aiormq.exceptions.AMQPError as exc:
        raise BrokerUnavailable(f"{where} failed the AMQP handshake: {reason(exc)}") from None
    except TimeoutError:
        raise BrokerTimeout(
            f"{where} did not complete the AMQP handshake within {config.timeout:g} s"
        ) from None
    except OSError as exc:
        raise BrokerUnavailable(f"{where} is unreachable: {reason(exc)}") from None


async def close_quietly(connection: aiormq.abc.AbstractConnection) -> None:
    # The connection may already be gone; closing is best effort.
    with contextlib.suppress(aiormq.exceptions.AMQPError, OSError, TimeoutError, RuntimeError):
        async with asyncio.timeout(5):
            await connection.close()


# -- properties ------------------------------------------------------------------------

# pamqp's attribute name -> ours (AMQP calls it "type")
PROPERTY_ATTRS = {
    "content_type": "content_type",
    "content_encoding": "content_encoding",
    "delivery_mode": "delivery_mode",
    "priority": "priority",
    "correlation_id": "correlation_id",
    "reply_to": "reply_to",
    "expiration": "expiration",
    "message_id": "message_id",
    "timestamp": "timestamp",
    "message_type": "type",
    "user_id": "user_id",
    "app_id": "app_id",
    "cluster_id": "cluster_id",
}


def properties_of(properties: Basic.Properties) -> dict[str, Any]:
    """The properties a message has (not None, not empty), by our names, as pamqp gave them."""
    found: dict[str, Any] = {}
    for attr, name in PROPERTY_ATTRS.items():
        value = getattr(properties, attr, None)
        if value is not None and value != "":
            found[name] = value
    return found


# -- publishing frame by frame ---------------------------------------------------------

BODY_FRAME = struct.Struct(">BHI")
FRAME_END = b"\xce"


def publish_method_frame(channel: int, exchange: str, routing_key: str) -> bytes:
    """The marshalled mandatory basic.publish method frame: the same for every copy."""
    method = Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=True)
    return pamqp.frame.marshal(method, channel)


def publish_frames(
    channel: int, method: bytes, body: bytes, properties: Basic.Properties, max_body_frame: int
) -> bytes:
    """One message, marshalled: the method frame, the content header, the body frames."""
    try:
        header = pamqp.frame.marshal(ContentHeader(0, len(body), properties), channel)
    except TypeError:
        # pamqp decodes a long-string header that is not UTF-8 to bytes but
        # cannot encode bytes: send those values as byte arrays (same bytes).
        if not properties.headers:
            raise
        properties.headers = binary_safe(properties.headers)
        header = pamqp.frame.marshal(ContentHeader(0, len(body), properties), channel)
    parts = [method, header]
    for start in range(0, len(body), max_body_frame):
        chunk = body[start : start + max_body_frame]
        # A body frame: type 3, channel, size, payload, frame end (0xCE).
        parts += [BODY_FRAME.pack(3, channel, len(chunk)), chunk, FRAME_END]
    return b"".join(parts)


def binary_safe(value: Any) -> Any:
    """``value`` with every ``bytes`` inside it turned into ``bytearray`` (AMQP byte array)."""
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, dict):
        return {k: binary_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [binary_safe(v) for v in value]
    return value


def settle_confirms_in_order(channel: Channel) -> None:
    """Make aiormq settle a "multiple" confirm in time proportional to what it confirms.

    aiormq 7.2 walks every pending confirmation for each basic.ack with
    ``multiple``: with thousands in flight, that walk costs more than the rest
    of a move's work. Publishes are numbered in order and ``confirmations``
    keeps that order, so the walk can stop at the first number past the
    confirmed one. Same outcome (each confirmed future settled by aiormq's own
    ``_confirm_delivery``), for this channel only.
    """
    original = getattr(channel, "_on_confirm_frame", None)
    settle = getattr(channel, "_confirm_delivery", None)
    if original is None or settle is None:
        return  # another aiormq: keep its own handling

    async def on_confirm_frame(frame: Any) -> None:
        confirmations = channel.confirmations
        if not getattr(frame, "multiple", False) or frame.delivery_tag not in confirmations:
            await original(frame)
            return
        settled = []
        for tag in confirmations:
            if tag > frame.delivery_tag:
                break
            settled.append(tag)
        for tag in settled:
            settle(tag, frame)

    channel._on_confirm_frame = on_confirm_frame  # type: ignore[method-assign]
