"""Sending dead letters back to a RabbitMQ exchange, confirmed: one letter or a batch alike.

:func:`outgoing` turns a stored letter (and an optional edit) into the
:class:`AmqpLetter` to publish: to its origin exchange and routing key (a
Celery task straight back to its queue), or to a target the user picked.

:class:`RabbitMQSender` is the one sender, for a single requeue and a bulk job
alike. It keeps one connection and one confirm channel per
vhost and publishes a whole batch with mandatory routing, every confirm
awaited together (RabbitMQ confirms persistent messages in groups, so a batch
costs about one disk sync, not one per message). Exchanges are checked first
with a passive declare on a separate channel (a publish to a missing exchange
would close the confirm channel and fail the whole batch), so a letter whose
exchange is gone is ``UNROUTABLE`` without being sent. Each letter gets an
:class:`~brokers.base.deadletters.Outcome`: ``SENT`` (confirmed),
``UNROUTABLE`` (missing exchange, or returned: no queue bound) or ``UNKNOWN``
(the connection died or no confirm came in time: it may or may not have
arrived). Callers resend ``UNKNOWN`` letters, so a letter is at least once at
its origin, and a duplicate carries the same message id.

It keeps the message's identity (message id, correlation id, content type,
headers) and sets ``x-mqboard-requeue-count`` to one more than the value the
message carried. ``x-death`` is kept: RabbitMQ appends to it if the message
dead-letters again, which keeps the whole history.

Settings: the cluster's ``timeout`` bounds every call (connects, declares and
each batch's confirms). Limitations: the AMQP ``user-id`` property is moved to
the header ``x-original-user-id`` (the broker refuses a user id other than the
publishing user's), and ``expiration`` is not copied (a message that expired
would expire again at once); a batch is all in memory (the caller sizes it).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import aio_pika
import aiormq
import aiormq.abc
from aiormq import Channel
from aiormq.abc import ChannelFrame
from aiormq.exceptions import PublishError
from pamqp.commands import Basic

from brokers.base import BrokerError, ClusterConfig, validate
from brokers.base.deadletters import (
    REQUEUE_COUNT_HEADER,
    SENT,
    Edit,
    InvalidLetter,
    Outcome,
    OutgoingLetter,
    RequeueTarget,
    Result,
    StoredLetter,
    next_count,
)
from brokers.decode.values import from_json
from brokers.rabbitmq.connection import (
    close_quietly,
    open_connection,
    publish_frames,
    publish_method_frame,
    settle_confirms_in_order,
)


@dataclass(frozen=True)
class AmqpLetter:
    """A message to publish: JSON-safe properties and headers as captured."""

    exchange: str
    routing_key: str
    body: bytes
    properties: Mapping[str, Any]
    headers: Mapping[str, Any]


def _headers_table(letter: AmqpLetter) -> dict[str, Any]:
    """The AMQP header table to send: the captured headers, requeue count bumped."""
    stored = letter.headers if type(letter.headers) is dict else dict(letter.headers)
    # from_json builds a new dict for a dict, so the table is ours to change.
    headers = from_json(stored)
    table: dict[str, Any] = headers if isinstance(headers, dict) else {}
    table[REQUEUE_COUNT_HEADER] = next_count(table.get(REQUEUE_COUNT_HEADER))
    props = letter.properties
    if props.get("user_id"):
        table["x-original-user-id"] = props["user_id"]
    return table


def amqp_message(letter: AmqpLetter) -> aio_pika.Message:
    """The letter as an aio-pika message (what :func:`amqp_properties` sends)."""
    props = letter.properties
    timestamp = from_json(props.get("timestamp"))
    priority = props.get("priority")
    mode = props.get("delivery_mode")
    return aio_pika.Message(
        letter.body,
        headers=_headers_table(letter),
        content_type=props.get("content_type"),
        content_encoding=props.get("content_encoding"),
        delivery_mode=int(mode) if isinstance(mode, int) else None,
        priority=int(priority) if isinstance(priority, int) else None,
        correlation_id=props.get("correlation_id"),
        reply_to=props.get("reply_to"),
        message_id=props.get("message_id"),
        timestamp=timestamp if isinstance(timestamp, datetime) else None,
        type=props.get("type"),
        app_id=props.get("app_id"),
    )


def _text(value: Any) -> str | None:
    # aio_pika.Message's conversion of its text properties: empty or missing is None.
    return str(value) if value else None


def amqp_properties(letter: AmqpLetter) -> Basic.Properties:
    """The letter's properties for a raw publish: ``amqp_message(letter).properties``,
    built directly (a bulk requeue builds one per letter; ``aio_pika.Message``'s
    checked attribute writes cost more than the rest of a letter's publish), with a
    message id made up when it has none."""
    props = letter.properties
    timestamp = from_json(props.get("timestamp"))
    priority = props.get("priority")
    mode = props.get("delivery_mode")
    # As aio-pika: a missing or 0 mode is not persistent; anything but 1 and 2 raises.
    delivery_mode = aio_pika.DeliveryMode(
        int(mode) if isinstance(mode, int) and mode else aio_pika.DeliveryMode.NOT_PERSISTENT
    )
    return Basic.Properties(
        app_id=_text(props.get("app_id")),
        content_encoding=props.get("content_encoding"),
        content_type=props.get("content_type"),
        correlation_id=_text(props.get("correlation_id")),
        delivery_mode=delivery_mode,
        expiration=None,
        headers=_headers_table(letter),
        # Returns are matched to their publish by message id.
        message_id=_text(props.get("message_id")) or uuid.uuid4().hex,
        message_type=_text(props.get("type")),
        priority=int(priority) if isinstance(priority, int) and priority else 0,
        reply_to=_text(props.get("reply_to")),
        timestamp=timestamp if isinstance(timestamp, datetime) else None,
        user_id=None,
    )


class RabbitMQSender:
    """Publishes letters to one vhost of one cluster; ``close`` when done.

    The publishes of a batch are marshalled here and written as one frame
    payload on an aiormq channel in confirm mode, with a confirm future per
    publish registered in aiormq's own bookkeeping (as ``basic_publish`` does;
    see ``brokers.rabbitmq.move.engine``), so basic.ack, basic.nack and
    basic.return settle them. Returns are matched by message id, so a batch
    never has two publishes with one id in flight (a repeated id waits for the
    next round); a letter without a message id gets one.
    """

    def __init__(self, config: ClusterConfig, vhost: str) -> None:
        self.config, self.vhost = config, vhost
        self.connection: aiormq.abc.AbstractConnection | None = None
        self.channel: Channel | None = None
        self.probe: aiormq.abc.AbstractChannel | None = None
        self.exchanges: dict[str, bool] = {}
        self.methods: dict[tuple[str, str], bytes] = {}

    async def _open(self) -> tuple[aiormq.abc.AbstractConnection, Channel]:
        if self.connection is None or self.connection.is_closed:
            name = f"mqboard requeue {self.config.slug}"
            self.connection = await open_connection(self.config, self.vhost, name)
            self.channel = self.probe = None
        if self.channel is None or self.channel.is_closed:
            channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
            self.channel = cast(Channel, channel)
            settle_confirms_in_order(self.channel)
            self.exchanges.clear()
            self.methods.clear()
        return self.connection, self.channel

    async def _exchange_exists(self, name: str) -> bool:
        """Whether the exchange exists (cached per channel); the default one always does."""
        if not name:
            return True
        if name in self.exchanges:
            return self.exchanges[name]
        connection, _ = await self._open()
        if self.probe is None or self.probe.is_closed:
            self.probe = await connection.channel(publisher_confirms=False)
        try:
            await self.probe.exchange_declare(name, passive=True, timeout=self.config.timeout)
            exists = True
        except aiormq.exceptions.ChannelNotFoundEntity:
            exists = False  # and the probe channel is closed: reopened next time
        self.exchanges[name] = exists
        return exists

    async def send(self, outgoing: Sequence[OutgoingLetter]) -> list[Outcome]:
        """Publish every letter; one outcome per letter, in order."""
        letters = [amqp_letter(o) for o in outgoing]
        # outgoing() checked every string pamqp must send: nothing here is refused for that.
        outcomes: list[Outcome | None] = [None] * len(letters)
        try:
            _, channel = await self._open()
            wanted = {le.exchange for le, o in zip(letters, outcomes, strict=True) if o is None}
            exists = {x: await self._exchange_exists(x) for x in wanted}
        except (aiormq.exceptions.AMQPError, OSError, TimeoutError, BrokerError) as exc:
            await self.close()
            return [o or Outcome(Result.UNKNOWN, f"not sent: {_why(exc)}") for o in outcomes]
        todo: list[int] = []
        for i, letter in enumerate(letters):
            if outcomes[i] is not None:
                continue
            if exists[letter.exchange]:
                todo.append(i)
            else:
                outcomes[i] = Outcome(
                    Result.UNROUTABLE,
                    f"unroutable: exchange {letter.exchange!r} in vhost {self.vhost!r}"
                    " does not exist",
                )
        while todo:
            todo = await self._round(channel, letters, todo, outcomes)
            if any(o is not None and o.result == Result.UNKNOWN for o in outcomes):
                await self.close()  # late confirms must not reach a reused channel
                break
        return [o or Outcome(Result.UNKNOWN, "not sent") for o in outcomes]

    async def _round(
        self,
        channel: Channel,
        letters: Sequence[AmqpLetter],
        todo: list[int],
        outcomes: list[Outcome | None],
    ) -> list[int]:
        """Publish ``todo`` (one per message id), await the confirms; return the deferred."""
        loop = asyncio.get_running_loop()
        parts: list[bytes] = []
        waiting: list[tuple[int, str, asyncio.Future[Any]]] = []
        in_flight: set[str] = set()
        deferred: list[int] = []
        for i in todo:
            letter = letters[i]
            properties = amqp_properties(letter)
            message_id = properties.message_id or ""
            if message_id in in_flight:
                deferred.append(i)
                continue
            route = (letter.exchange, letter.routing_key)
            method = self.methods.get(route)
            if method is None:
                method = self.methods[route] = publish_method_frame(channel.number, *route)
            try:
                frames = publish_frames(
                    channel.number, method, letter.body, properties, channel.max_content_size
                )
            except (TypeError, ValueError) as exc:
                outcomes[i] = Outcome(Result.UNROUTABLE, f"cannot be encoded for AMQP: {exc}")
                continue
            parts.append(frames)
            channel.delivery_tag += 1
            future: asyncio.Future[Any] = loop.create_future()
            channel.confirmations[channel.delivery_tag] = future
            channel.message_id_delivery_tag[message_id] = channel.delivery_tag
            in_flight.add(message_id)
            waiting.append((i, message_id, future))
        if not parts:
            return deferred
        await channel.write_queue.put(ChannelFrame(payload=b"".join(parts), should_close=False))
        futures = [f for _, _, f in waiting]
        done, _ = await asyncio.wait(futures, timeout=self.config.timeout)
        for i, message_id, future in waiting:
            channel.message_id_delivery_tag.pop(message_id, None)
            letter = letters[i]
            if future not in done:
                future.cancel()
                outcomes[i] = Outcome(
                    Result.UNKNOWN, f"no confirm within {self.config.timeout:g} s"
                )
            elif future.cancelled():
                outcomes[i] = Outcome(Result.UNKNOWN, "no confirm: the channel closed")
            elif isinstance(error := future.exception(), PublishError):  # basic.return
                outcomes[i] = Outcome(
                    Result.UNROUTABLE,
                    f"unroutable: no queue is bound to exchange {letter.exchange or '(default)'!r}"
                    f" in vhost {self.vhost!r} for routing key {letter.routing_key!r}",
                )
            elif error is not None:  # a nack, or the channel died
                outcomes[i] = Outcome(Result.UNKNOWN, f"no confirm: {_why(error)}")
            else:
                outcomes[i] = SENT
        return deferred

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        self.channel = self.probe = None
        self.exchanges.clear()
        self.methods.clear()
        if connection is not None:
            await close_quietly(connection)


def amqp_letter(outgoing: OutgoingLetter) -> AmqpLetter:
    if not isinstance(outgoing.message, AmqpLetter):
        raise TypeError(f"not a RabbitMQ letter: {type(outgoing.message).__name__}")
    return outgoing.message


def destination(letter: StoredLetter, target: RequeueTarget | None) -> tuple[str, str]:
    """The exchange and routing key to publish to; InvalidLetter when none is known."""
    if target is not None and (target.exchange is not None or target.routing_key is not None):
        return target.exchange or "", target.routing_key or ""
    if letter.is_task and letter.origin_queue:
        # A Celery task goes straight back to the queue its worker reads.
        return "", letter.origin_queue
    if letter.origin_exchange or letter.origin_routing_key:
        return letter.origin_exchange, letter.origin_routing_key
    if letter.origin_queue:
        return "", letter.origin_queue
    raise InvalidLetter("unknown origin: choose a target exchange and routing key")


def outgoing(
    letter: StoredLetter, target: RequeueTarget | None, edit: Edit | None
) -> OutgoingLetter:
    """What to publish for a stored letter: its body, properties and headers, or the edit's."""
    exchange, routing_key = destination(letter, target)
    validate.amqp_exchange(exchange)
    validate.amqp_short(routing_key, "routing_key")
    body = edit.body if edit is not None and edit.body is not None else letter.body
    headers = edit.headers if edit is not None and edit.headers is not None else letter.headers
    properties = {
        k: v for k, v in letter.properties.items() if k not in ("exchange", "routing_key")
    }
    if edit is not None and edit.properties:
        properties.update(edit.properties)
    amqp = AmqpLetter(exchange, routing_key, body, properties, headers or {})
    validate.amqp_message(
        vhost=letter.vhost,
        exchange=exchange,
        routing_key=routing_key,
        headers=amqp.headers,
        properties=properties,
    )
    return OutgoingLetter(
        address=letter.vhost,
        destination={"vhost": letter.vhost, "exchange": exchange, "routing_key": routing_key},
        where=f"{exchange or '(default)'} / {routing_key}",
        message=amqp,
    )


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__
