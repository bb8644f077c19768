"""Reading, publishing and purging RabbitMQ messages over AMQP.

Features:

* ``peek``: the first N messages of a queue. Classic and quorum queues have no
  non-destructive read: we ``basic.get`` N messages without acking them, then
  ``basic.nack(multiple, requeue)`` them all at once (closing the channel
  would do the same if anything fails in between, so nothing is lost). The
  broker marks them redelivered, may put them back in another order when
  other consumers are active, and a quorum queue counts each peek as a
  delivery attempt. A queue with a delivery limit (argument, policy or
  RabbitMQ 4's default) is refused with :class:`PeekRefused` before anything
  is read, since a peek could push a message over it (see
  ``brokers.rabbitmq.delivery_limit``); ``peek_plan`` says so beforehand.
  Streams are read by offset from the first message with a consumer, which
  changes nothing.
  AMQP rather than the management API's ``/get``, because the HTTP API turns
  byte-array headers into text, decimals into wrong floats, void into
  ``"undefined"`` and timestamps into integers; here every header keeps its
  AMQP type and the body every byte.
* ``publish``: publisher confirms and ``mandatory``, with ``on_return_raises``
  so an unroutable message raises :class:`Unroutable` instead of vanishing.
  aiormq gives a message without a ``message_id`` a random one (it needs it
  to match returns); the result says which.
* ``purge``: a passive declare (the exact number of ready messages) then
  ``queue.purge``; the result holds both counts.

Limitations: pamqp writes float header values as 32-bit floats, so callers
should refuse floats that do not survive that (the dashboard does). Peeks stop
early once ``max_bytes`` of bodies have been read.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiormq.abc import DeliveredMessage
from pamqp.commands import Basic

from brokers.base import BrokerError, NotFound
from brokers.base.validate import amqp_message
from brokers.rabbitmq.connection import PROPERTY_ATTRS, Session, properties_of
from brokers.rabbitmq.delivery_limit import peek_plan as plan_for
from brokers.rabbitmq.models import (
    OutgoingMessage,
    PeekedMessage,
    PeekPlan,
    PeekRefused,
    PeekResult,
    PublishResult,
    PurgeResult,
)
from brokers.rabbitmq.values import as_int, as_text, quote_name

PEEK_MAX_BYTES = 256 * 1024 * 1024
STREAM_IDLE = 0.5  # seconds without a new stream message that end a stream peek

_INFO_COLUMNS = (
    "name,type,messages,messages_ready,messages_unacknowledged,"
    "arguments,effective_policy_definition"
)


async def _queue_info(broker: Session, vhost: str, queue: str) -> Mapping[str, Any]:
    path = f"/api/queues/{quote_name(vhost)}/{quote_name(queue)}"
    try:
        data = await broker.management_get(path, {"columns": _INFO_COLUMNS})
    except NotFound:
        raise NotFound(
            f"queue {queue!r} in vhost {vhost!r} does not exist (it may have just been deleted)"
        ) from None
    return {**data, "name": queue} if isinstance(data, Mapping) else {"name": queue}


async def peek_plan(broker: Session, vhost: str, queue: str) -> PeekPlan:
    """What a peek of the queue would do: its type and the delivery limit that refuses it."""
    return await plan_for(broker, vhost, await _queue_info(broker, vhost, queue))


def refusal(plan: PeekPlan) -> str:
    limit = plan.delivery_limit
    assert limit is not None
    return (
        f"queue {plan.queue!r} is a quorum queue with a delivery limit of {limit.limit}"
        f" ({limit.source}): every peek counts as a delivery, and a message's count is"
        " only visible once it has been delivered, so a peek could dead-letter or drop a"
        " message at its limit. Peeks of such queues are refused; nothing was read"
    )


def _peeked(position: int, delivered: DeliveredMessage) -> PeekedMessage:
    props = delivered.header.properties
    properties = properties_of(props)
    headers = props.headers if isinstance(props.headers, Mapping) else {}
    delivery = delivered.delivery
    return PeekedMessage(
        position=position,
        body=bytes(delivered.body),
        exchange=as_text(getattr(delivery, "exchange", "")),
        routing_key=as_text(getattr(delivery, "routing_key", "")),
        redelivered=bool(getattr(delivery, "redelivered", False)),
        properties=properties,
        headers=dict(headers),
    )


async def peek(
    broker: Session, vhost: str, queue: str, count: int, max_bytes: int = PEEK_MAX_BYTES
) -> PeekResult:
    info = await _queue_info(broker, vhost, queue)
    plan = await plan_for(broker, vhost, info)
    if plan.delivery_limit is not None:
        raise PeekRefused(refusal(plan), plan.delivery_limit)
    kind = plan.queue_type
    if kind == "stream":
        # The statistics may lag: a stream they call empty still gets a short look.
        known = as_int(info.get("messages"))
        expected = count if not known else min(count, known)
        got = await _read_stream(broker, vhost, queue, count, expected, first_wait=known != 0)
        remaining = None
    else:
        got, remaining = await _get_and_requeue(broker, vhost, queue, count, max_bytes)
    return PeekResult(
        vhost=vhost,
        queue=queue,
        queue_type=kind,
        requested=count,
        messages=tuple(_peeked(i + 1, m) for i, m in enumerate(got)),
        remaining=remaining,
        destructive=kind != "stream",
        fetched_at=datetime.now(UTC),
    )


async def _get_and_requeue(
    broker: Session, vhost: str, queue: str, count: int, max_bytes: int
) -> tuple[list[DeliveredMessage], int | None]:
    got: list[DeliveredMessage] = []
    remaining: int | None = None
    timeout = broker.config.timeout
    async with broker.amqp_channel(vhost) as channel:
        size = 0
        try:
            while len(got) < count and size <= max_bytes:
                delivered = await channel.basic_get(queue, no_ack=False, timeout=timeout)
                if not isinstance(delivered.delivery, Basic.GetOk):
                    break
                got.append(delivered)
                size += len(delivered.body)
                remaining = delivered.delivery.message_count
        finally:
            # Everything we hold goes back in one nack; if the channel is already
            # gone, the broker has requeued them when it closed.
            if got and not channel.is_closed:
                tag = got[-1].delivery_tag
                assert tag is not None
                await channel.basic_nack(tag, multiple=True, requeue=True)
    return got, remaining


async def _read_stream(
    broker: Session, vhost: str, queue: str, count: int, expected: int, first_wait: bool
) -> list[DeliveredMessage]:
    got: list[DeliveredMessage] = []
    arrived = asyncio.Event()

    async def on_message(message: DeliveredMessage) -> None:
        got.append(message)
        arrived.set()

    loop = asyncio.get_running_loop()
    deadline = loop.time() + broker.config.timeout
    async with broker.amqp_channel(vhost) as channel:
        await channel.basic_qos(prefetch_count=count)  # streams need a prefetch
        ok = await channel.basic_consume(
            queue, on_message, no_ack=False, arguments={"x-stream-offset": "first"}
        )
        while len(got) < expected:
            arrived.clear()
            first = broker.config.timeout if first_wait else STREAM_IDLE * 2
            wait = min(STREAM_IDLE if got else first, deadline - loop.time())
            if wait <= 0:
                break
            try:
                async with asyncio.timeout(wait):
                    await arrived.wait()
            except TimeoutError:
                break
        assert ok.consumer_tag is not None
        await channel.basic_cancel(ok.consumer_tag)
    return got[:count]


def amqp_properties(message: OutgoingMessage) -> Basic.Properties:
    props: dict[str, Any] = {}
    for attr, name in PROPERTY_ATTRS.items():
        if name in message.properties and message.properties[name] is not None:
            props[attr] = message.properties[name]
    return Basic.Properties(headers=dict(message.headers) or None, **props)


async def publish(broker: Session, vhost: str, message: OutgoingMessage) -> PublishResult:
    amqp_message(
        vhost=vhost,
        exchange=message.exchange,
        routing_key=message.routing_key,
        headers=message.headers,
        properties=message.properties,
    )
    properties = amqp_properties(message)
    async with broker.amqp_channel(vhost, confirms=True) as channel:
        if message.exchange:
            # A missing exchange closes the channel; asking first says so clearly.
            await channel.exchange_declare(message.exchange, passive=True)
        confirmation = await channel.basic_publish(
            message.body,
            exchange=message.exchange,
            routing_key=message.routing_key,
            properties=properties,
            mandatory=True,
            timeout=broker.config.timeout,
        )
    if not isinstance(confirmation, Basic.Ack):
        raise BrokerError(f"the broker did not confirm the message ({confirmation!r})")
    return PublishResult(
        vhost=vhost,
        exchange=message.exchange,
        routing_key=message.routing_key,
        size=len(message.body),
        message_id=properties.message_id,
        confirmed=True,
    )


async def purge(broker: Session, vhost: str, queue: str) -> PurgeResult:
    info = await _queue_info(broker, vhost, queue)
    timeout = broker.config.timeout
    async with broker.amqp_channel(vhost) as channel:
        declared = await channel.queue_declare(queue, passive=True, timeout=timeout)
        purged = await channel.queue_purge(queue, timeout=timeout)
    return PurgeResult(
        vhost=vhost,
        queue=queue,
        purged=purged.message_count or 0,
        ready_before=declared.message_count,
        unacked_before=as_int(info.get("messages_unacknowledged")),
    )
