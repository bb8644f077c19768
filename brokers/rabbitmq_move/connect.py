"""The mover's own AMQP connection: one per move, to the move's vhost, never reconnecting.

A move must not silently reconnect: after a lost connection RabbitMQ has
requeued every unacked message, and the move stops with its exact count
instead of carrying on with a different view of the queue.

It is a plain aiormq connection (aio-pika's transport) with the vhost set
directly, like the adapter's browsing connections (``brokers.rabbitmq_errors``):
through a URL, a vhost containing the text ``%2F`` could not be opened, and
pamqp's client-side name check is relaxed to what RabbitMQ accepts, so that
queues named with spaces, unicode or ``<script>`` can be moved too.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from typing import Any
from urllib.parse import urlsplit

import aiormq
import aiormq.abc
import aiormq.exceptions
from aiormq import Channel
from yarl import URL

from brokers.base import BrokerTimeout, ClusterConfig, ConfigError, NotFound
from brokers.rabbitmq_errors import accept_every_entity_name, connect_errors
from brokers.rabbitmq_move.model import MoveSpec


async def open_connection(
    config: ClusterConfig, vhost: str, name: str
) -> aiormq.abc.AbstractConnection:
    """Connect to ``vhost`` on the cluster's AMQP host; ``name`` is the connection_name."""
    if not config.amqp_url:
        raise ConfigError(f"cluster {config.slug!r}: amqp_url is required for RabbitMQ")
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
    context = None
    if url.scheme == "amqps":
        context = ssl.create_default_context()
        if not config.verify_tls:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
    connection = aiormq.Connection(
        address, context=context, client_properties={"connection_name": name}
    )
    connection.vhost = vhost  # not through the URL: see the module docstring
    with connect_errors(config, vhost, port):
        await asyncio.wait_for(connection.connect(), timeout=config.timeout + 1)
    return connection


async def close_quietly(connection: aiormq.abc.AbstractConnection) -> None:
    # The connection may already be gone; closing is best effort.
    with contextlib.suppress(aiormq.exceptions.AMQPError, OSError, TimeoutError, RuntimeError):
        await asyncio.wait_for(connection.close(), timeout=5)


def describe(exc: BaseException) -> str:
    """A short, user-facing reason for an AMQP failure."""
    texts = [a for a in exc.args if isinstance(a, str) and a]
    text = texts[-1] if texts else (str(exc) or type(exc).__name__)
    if "Connection refused" in text or "Errno 111" in text:
        return "connection refused (is the broker running and the port right?)"
    return text[:300]


async def ready_count(probe: aiormq.abc.AbstractChannel, spec: MoveSpec, seconds: float) -> int:
    """Ready messages in the move's source queue (passive queue.declare)."""
    try:
        ok = await probe.queue_declare(spec.source, passive=True, timeout=seconds)
    except aiormq.exceptions.ChannelNotFoundEntity:
        raise NotFound(f"queue {spec.source!r} does not exist in vhost {spec.vhost!r}") from None
    except TimeoutError:
        raise BrokerTimeout(f"RabbitMQ did not answer within {seconds:g} s") from None
    return int(ok.message_count or 0)


async def check_target(probe: aiormq.abc.AbstractChannel, spec: MoveSpec, seconds: float) -> None:
    """NotFound unless the move's target queue or exchange exists."""
    target = spec.target
    try:
        if target.is_queue:
            await probe.queue_declare(target.routing_key, passive=True, timeout=seconds)
        elif target.exchange:
            await probe.exchange_declare(target.exchange, passive=True, timeout=seconds)
    except aiormq.exceptions.ChannelNotFoundEntity:
        raise NotFound(
            f"target {target.describe()} does not exist in vhost {spec.vhost!r}"
        ) from None
    except TimeoutError:
        raise BrokerTimeout(f"RabbitMQ did not answer within {seconds:g} s") from None


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
