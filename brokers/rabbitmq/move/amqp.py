"""The mover's AMQP pieces: checks of source and target, the copies it publishes, its acks.

A moved copy keeps the original's properties and headers, plus our counter
(:func:`copy_properties`). The move's own connection (one per move, to the
move's vhost, never reconnecting) comes from
``brokers.rabbitmq.connection.open_connection``: after a lost connection
RabbitMQ has requeued every unacked message, and the move stops with its exact
count instead of carrying on with a different view of the queue.
"""

from __future__ import annotations

from uuid import uuid4

import aiormq
import aiormq.abc
import aiormq.exceptions
import pamqp.frame
from pamqp.commands import Basic

from brokers.base import BrokerTimeout, NotFound
from brokers.rabbitmq.move.model import ORIGINAL_USER_ID_HEADER, REQUEUE_COUNT_HEADER, MoveSpec


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


def copy_properties(properties: Basic.Properties, login: str) -> Basic.Properties:
    """The delivered properties, reused: requeue count + 1, a message id, a safe user_id."""
    headers = dict(properties.headers or {})
    previous = headers.get(REQUEUE_COUNT_HEADER)
    headers[REQUEUE_COUNT_HEADER] = (previous if isinstance(previous, int) else 0) + 1
    if properties.user_id and properties.user_id != login:
        # RabbitMQ refuses a publish whose user_id is not the connection's login.
        headers[ORIGINAL_USER_ID_HEADER] = properties.user_id
        properties.user_id = None
    if not properties.message_id:
        # aiormq matches a basic.return to its publish by message id.
        properties.message_id = uuid4().hex
    properties.headers = headers
    return properties


def ack_frame(channel: int, tag: int, *, multiple: bool) -> bytes:
    return pamqp.frame.marshal(Basic.Ack(delivery_tag=tag, multiple=multiple), channel)
