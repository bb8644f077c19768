"""AMQP connections and errors of the RabbitMQ adapter: library failures become BrokerErrors.

Browsing connections are plain aiormq connections with the vhost set
directly: aio-pika and aiormq take the vhost from the URL path and turn every
``%2F`` in it into ``/``, so a vhost whose name contains the text ``%2F``
could not be opened through a URL at all.

pamqp refuses queue and exchange names outside the AMQP spec's
``^[a-zA-Z0-9-_.:@#,/+ ]*$`` before anything is sent, while RabbitMQ accepts
any UTF-8 name (the management API creates them too). A dashboard must reach
every queue that exists, so :func:`accept_every_entity_name` relaxes that
client-side check to what the broker accepts. It changes pamqp's module-level
table, so it applies to every aio-pika/aiormq user in the process: it only
stops refusing names the broker takes.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import aio_pika
import aiormq
import aiormq.abc
import aiormq.exceptions
import pamqp.constants
from aio_pika.abc import AbstractConnection
from yarl import URL

from brokers.base import (
    BrokerAuthError,
    BrokerError,
    BrokerTimeout,
    BrokerUnavailable,
    ClusterConfig,
    NotFound,
)
from brokers.rabbitmq_messages_model import Unroutable

_ANY_NAME = re.compile(r".*", re.DOTALL)


def accept_every_entity_name() -> None:
    """Let pamqp send any queue or exchange name RabbitMQ accepts (see the docstring)."""
    for domain in ("queue-name", "exchange-name"):
        pamqp.constants.DOMAIN_REGEX[domain] = _ANY_NAME


def _ssl_context(config: ClusterConfig) -> ssl.SSLContext | None:
    if urlsplit(config.amqp_url).scheme != "amqps":
        return None
    context = ssl.create_default_context()
    if not config.verify_tls:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


async def open_channel_connection(
    config: ClusterConfig, vhost: str
) -> aiormq.abc.AbstractConnection:
    """A plain aiormq connection to ``vhost`` (any name), within the cluster's timeout."""
    accept_every_entity_name()
    url = urlsplit(config.amqp_url)
    port = url.port or (5671 if url.scheme == "amqps" else 5672)
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
        context=_ssl_context(config),
        client_properties={"connection_name": f"mqboard {config.slug} (browse)"},
    )
    connection.vhost = vhost  # not through the URL: see the module docstring
    with connect_errors(config, vhost, port):
        await asyncio.wait_for(connection.connect(), timeout=config.timeout + 1)
    return connection


async def connect_amqp(config: ClusterConfig, vhost: str) -> AbstractConnection:
    """The adapter's long-lived aio-pika connection to the URL's vhost (``connect``/``ping``)."""
    url = urlsplit(config.amqp_url)
    port = url.port or (5671 if url.scheme == "amqps" else 5672)
    ssl_context = _ssl_context(config)
    # connect_robust reconnects by itself after a broker restart, but its
    # first connection must succeed within the timeout.
    with connect_errors(config, vhost, port):
        return await asyncio.wait_for(
            aio_pika.connect_robust(
                host=url.hostname or "localhost",
                port=port,
                login=config.username,
                password=config.password.reveal(),
                virtualhost=vhost,
                ssl=ssl_context is not None,
                ssl_context=ssl_context,
                timeout=config.timeout,
                client_properties={"connection_name": f"mqboard {config.slug}"},
            ),
            timeout=config.timeout + 1,
        )


@contextlib.contextmanager
def connect_errors(config: ClusterConfig, vhost: str, port: int) -> Iterator[None]:
    where = f"AMQP at {urlsplit(config.amqp_url).hostname}:{port}"
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
    except TimeoutError:
        raise BrokerTimeout(
            f"{where} did not complete the AMQP handshake within {config.timeout:g} s"
        ) from None
    except OSError as exc:
        raise BrokerUnavailable(f"{where} is unreachable: {reason(exc)}") from None


@contextlib.contextmanager
def amqp_errors(where: str, timeout: float) -> Iterator[None]:
    """Turn aiormq/aio-pika failures inside the block into BrokerErrors that say what."""
    try:
        yield
    except BrokerError:
        raise
    except aiormq.exceptions.PublishError as exc:
        raise Unroutable(
            f"{where}: the message could not be routed to any queue ({_reply_text(exc)});"
            " nothing was delivered"
        ) from None
    except aiormq.exceptions.DeliveryError as exc:
        raise BrokerError(f"{where}: the broker refused the message ({exc})") from None
    except aiormq.exceptions.ChannelNotFoundEntity as exc:
        raise NotFound(f"{where}: {_amqp_text(exc)}") from None
    except aiormq.exceptions.ChannelAccessRefused as exc:
        raise BrokerAuthError(f"{where}: access refused: {_amqp_text(exc)}") from None
    except aiormq.exceptions.ChannelLockedResource as exc:
        raise BrokerError(
            f"{where}: in exclusive use by another client: {_amqp_text(exc)}"
        ) from None
    except aiormq.exceptions.ChannelClosed as exc:
        raise BrokerError(f"{where}: the broker closed the channel: {_amqp_text(exc)}") from None
    except (aiormq.exceptions.AMQPConnectionError, ConnectionError) as exc:
        raise BrokerUnavailable(f"{where}: the AMQP connection failed: {reason(exc)}") from None
    except (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError) as exc:
        raise BrokerError(f"{where}: AMQP error: {reason(exc)}") from None
    except TimeoutError:
        raise BrokerTimeout(f"{where}: no answer within {timeout:g} s") from None


def _amqp_text(exc: BaseException) -> str:
    """The broker's reply text, e.g. ``NOT_FOUND - no queue 'x' in vhost 'y'``."""
    args = [a for a in getattr(exc, "args", ()) if isinstance(a, str)]
    return (args[-1] if args else str(exc))[:300]


def _reply_text(exc: aiormq.exceptions.DeliveryError) -> str:
    frame = exc.frame
    reply = getattr(frame, "reply_text", None)
    return str(reply) if reply else str(exc)


def reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    if "Connection refused" in text or "ConnectionRefused" in text or "Errno 111" in text:
        return "connection refused (is the broker running and the port right?)"
    return text[:200]
