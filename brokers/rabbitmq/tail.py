"""RabbitMQ tail: a temporary queue bound like the watched one, read at a bounded rate.

Features: :func:`open_rabbitmq_tap` (the RabbitMQ kind's tap,
:class:`QueueTap`) reads the watched queue's bindings from the management API,
declares a server-named, exclusive, auto-delete, non-durable classic queue and
binds it with the same (exchange, routing key, arguments) as every binding
except the default exchange's. RabbitMQ then routes a copy of each message
bound for the watched queue to the tap too; the watched queue and its consumers
are untouched.

Bounded cost: the tap consumes with prefetch 1 and acknowledges a message only
once it was shown, so it takes at most ``rate`` messages per second off the
broker whatever flows through the queue. When it falls behind (the held
message had to wait for the rate limit, or waited longer than
:data:`STALE_AFTER`), it shows that message and purges what queued up behind
it, counting the purged messages as skipped: ``queue.purge`` says exactly how
many it removed; the next message shown is one that arrived after the purge. A
message is shown before its purge and its acknowledgement are sent, so neither
round trip delays it; the purge's count follows as a batch of its own.
Between purges the tap queue is capped at ``buffer`` messages and
``buffer_bytes`` bytes (``x-max-length``, ``x-max-length-bytes`` with
``drop-head``); a purge that finds the count cap reached reports its
count as a lower bound. Overflow by the byte cap is not seen.

Limitations: messages published straight to the queue through the default
exchange (routing key = queue name) cannot be copied by any binding; a queue fed
only that way cannot be tapped (:class:`NotTappable`). Bindings added after the
tail started are not followed. Messages the watched queue itself refuses
(its own max-length with reject-publish) are still seen by the tap. A vhost
policy that dead-letters would apply to the tap queue too, so the tap declares
a dead-letter exchange that does not exist (drops go nowhere) when the user may
(RabbitMQ checks write access to it), and otherwise says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import aiormq.abc
import aiormq.exceptions

from brokers.base import Broker, BrokerAuthError, BrokerUnavailable, NotFound
from brokers.base.tail import (
    NotTappable,
    RateLimiter,
    TailBatch,
    TailMessage,
    TailOptions,
    TailSource,
    decode_for_tail,
    header_rows,
)
from brokers.rabbitmq.adapter import rabbitmq_adapter
from brokers.rabbitmq.connection import Session, properties_of
from brokers.rabbitmq.errors import amqp_errors
from brokers.rabbitmq.routes import parse_binding
from brokers.rabbitmq.values import quote_name

# A message held this long waiting for the rate limit means the tap is behind:
# purge the backlog (counted) so the next message shown is a fresh one.
STALE_AFTER = 0.2
# How often a quiet tap checks that its channel is still open.
IDLE_CHECK = 1.0
# Dead-lettered tap messages (a vhost policy's max-length or TTL) go here:
# an exchange that does not exist, so they are dropped instead of reaching the
# user's dead-letter queue.
NOWHERE = "mqboard.tail.discard"

COUNTING = (
    "The tail reads at most the rate shown from a private copy of the queue's traffic."
    " When it falls behind, it empties that copy and counts what it threw away (exact,"
    " from RabbitMQ's purge count; \u2265 when its buffer overflowed in between)."
)


class RabbitMQTap:
    counting = COUNTING

    def __init__(
        self,
        broker: Session,
        vhost: str,
        queue: str,
        *,
        rate: int,
        buffer: int,
        buffer_bytes: int,
        preview: int,
    ) -> None:
        self.broker, self.vhost, self.queue = broker, vhost, queue
        self.buffer, self.buffer_bytes, self.preview = buffer, buffer_bytes, preview
        self.limiter = RateLimiter(rate)
        self.notes: tuple[str, ...] = ()
        self.tap_queue = ""
        self.bindings = 0
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._consumer_tag = ""
        self._arrived: asyncio.Queue[tuple[float, aiormq.abc.DeliveredMessage]] = asyncio.Queue()
        self._where = f"tail of queue {queue!r} in vhost {vhost!r}"

    async def open(self) -> None:
        bindings = await self._bindings()
        taps = [b for b in bindings if b.source != ""]
        if not taps:
            raise NotTappable(
                f"Queue {self.queue!r} is fed only through the default exchange (messages"
                " published straight to it by name). RabbitMQ cannot copy those to another"
                " queue, so this queue cannot be tapped; bind it to an exchange to tail it."
            )
        notes = []
        if len(taps) < len(bindings):
            notes.append(
                "Messages published straight to this queue through the default exchange"
                " are not seen by the tail."
            )
        timeout = self.broker.config.timeout
        with amqp_errors(self._where, timeout):
            connection = await self.broker.amqp_connection(self.vhost)
        self._channel, guarded = await self._declare(connection, timeout)
        if not guarded:
            notes.append(
                "The tail's buffer queue could not be given a discard dead-letter exchange"
                f" ({NOWHERE!r}: no write access); a vhost policy that dead-letters"
                " would send its overflow to that policy's dead-letter exchange."
            )
        self.notes = tuple(notes)
        channel = self._channel
        try:
            with amqp_errors(self._where, timeout):
                for binding in taps:
                    await channel.queue_bind(
                        self.tap_queue,
                        binding.source,
                        binding.routing_key,
                        arguments=dict(binding.arguments) or None,
                        timeout=timeout,
                    )
                self.bindings = len(taps)
                await channel.basic_qos(prefetch_count=1, timeout=timeout)
                ok = await channel.basic_consume(
                    self.tap_queue, self._on_message, no_ack=False, timeout=timeout
                )
                self._consumer_tag = ok.consumer_tag or ""
        except BaseException:
            await self.close()
            raise

    async def _bindings(self) -> list[Any]:
        path = f"/api/queues/{quote_name(self.vhost, 'vhost')}/{quote_name(self.queue)}"
        try:
            # The bindings of a queue that does not exist are an empty list, not a 404.
            _, raw = await asyncio.gather(
                self.broker.management_get(path, {"columns": "name"}),
                self.broker.management_get(f"{path}/bindings"),
            )
        except NotFound:
            raise NotFound(f"queue {self.queue!r} in vhost {self.vhost!r} does not exist") from None
        return (
            [parse_binding(b) for b in raw if isinstance(b, Mapping)]
            if isinstance(raw, list)
            else []
        )

    async def _declare(
        self, connection: aiormq.abc.AbstractConnection, seconds: float
    ) -> tuple[aiormq.abc.AbstractChannel, bool]:
        """A channel and the declared tap queue; False when the dead-letter guard was refused."""
        arguments: dict[str, Any] = {
            "x-queue-type": "classic",
            "x-max-length": self.buffer,
            "x-max-length-bytes": self.buffer_bytes,
            "x-overflow": "drop-head",
            "x-dead-letter-exchange": NOWHERE,
        }
        for guarded in (True, False):
            if not guarded:
                arguments.pop("x-dead-letter-exchange")
            with amqp_errors(self._where, seconds):
                channel = await connection.channel()
            try:
                with amqp_errors(self._where, seconds):
                    ok = await channel.queue_declare(
                        "",
                        exclusive=True,
                        auto_delete=True,
                        durable=False,
                        arguments=arguments,
                        timeout=seconds,
                    )
            except BrokerAuthError:
                await _close_channel(channel)
                if guarded:
                    continue  # refused write access to the discard exchange
                raise
            except BaseException:
                await _close_channel(channel)
                raise
            self.tap_queue = ok.queue or ""
            return channel, guarded
        raise AssertionError("unreachable")

    async def _on_message(self, message: aiormq.abc.DeliveredMessage) -> None:
        self._arrived.put_nowait((time.monotonic(), message))

    async def batches(self) -> AsyncGenerator[TailBatch, None]:
        channel = self._channel
        if channel is None:
            raise BrokerUnavailable(f"{self._where}: not open")
        timeout = self.broker.config.timeout
        while True:
            try:
                # Not wait_for: on Python 3.11 it can swallow a cancel as the get completes.
                async with asyncio.timeout(IDLE_CHECK):
                    arrived, message = await self._arrived.get()
            except TimeoutError:
                if channel.is_closed:
                    raise BrokerUnavailable(f"{self._where}: the AMQP channel closed") from None
                continue
            wait = self.limiter.wait_time()
            if wait > 0:
                await asyncio.sleep(wait)
            tag = message.delivery_tag
            assert tag is not None
            behind = wait > 0 or time.monotonic() - arrived > STALE_AFTER
            self.limiter.allow()
            # Shown first: the purge and the ack below are broker round trips, which
            # the message shown need not wait for.
            yield TailBatch((self._message(message),))
            count = 0
            with amqp_errors(self._where, timeout):
                if behind:
                    # Behind: what queued up behind the held message while it
                    # waited is older than what comes next. Purge it (counted)
                    # before the ack, which lets RabbitMQ deliver the queue's
                    # head: that head is then a message newer than the purge.
                    purged = await channel.queue_purge(self.tap_queue, timeout=timeout)
                    count = purged.message_count or 0
                await channel.basic_ack(tag)
            if count:
                yield TailBatch((), count, count < self.buffer)

    def _message(self, delivered: aiormq.abc.DeliveredMessage) -> TailMessage:
        props = delivered.header.properties
        headers = props.headers if isinstance(props.headers, Mapping) else {}
        properties = {
            name: value.isoformat() if isinstance(value, datetime) else str(value)
            for name, value in properties_of(props).items()
        }
        body = bytes(delivered.body)
        delivery = delivered.delivery
        exchange = getattr(delivery, "exchange", "")
        routing_key = getattr(delivery, "routing_key", "")
        return TailMessage(
            received_at=datetime.now(UTC),
            size=len(body),
            body=decode_for_tail(
                body,
                content_type=props.content_type,
                content_encoding=props.content_encoding,
                headers=headers,
                preview=self.preview,
            ),
            headers=header_rows(headers, self.preview),
            exchange=exchange if isinstance(exchange, str) else "",
            routing_key=routing_key if isinstance(routing_key, str) else "",
            properties=properties,
        )

    async def close(self) -> None:
        """Cancel the consumer, delete the tap queue, close the channel; best effort."""
        channel, self._channel = self._channel, None
        if channel is None or channel.is_closed:
            return
        timeout = self.broker.config.timeout
        with contextlib.suppress(aiormq.exceptions.AMQPError, OSError, TimeoutError, RuntimeError):
            if self._consumer_tag:
                await channel.basic_cancel(self._consumer_tag, timeout=timeout)
            if self.tap_queue:
                await channel.queue_delete(self.tap_queue, timeout=timeout)
        await _close_channel(channel)


async def _close_channel(channel: aiormq.abc.AbstractChannel) -> None:
    if channel.is_closed:
        return
    with contextlib.suppress(aiormq.exceptions.AMQPError, OSError, TimeoutError, RuntimeError):
        await channel.close()


async def open_rabbitmq_tap(
    broker: Session,
    vhost: str,
    queue: str,
    *,
    rate: int = 20,
    buffer: int = 10_000,
    buffer_bytes: int = 16 * 1024 * 1024,
    preview: int = 1024,
) -> RabbitMQTap:
    """An open tap on ``queue``; raises NotFound, NotTappable or another BrokerError."""
    tap = RabbitMQTap(
        broker, vhost, queue, rate=rate, buffer=buffer, buffer_bytes=buffer_bytes, preview=preview
    )
    await tap.open()
    return tap


@dataclass(frozen=True)
class QueueTap:
    """The RabbitMQ kind's tap capability: a tail on one queue of a vhost."""

    entity: str = "queue"

    async def open(
        self, broker: Broker, name: str, *, vhost: str, options: TailOptions
    ) -> TailSource:
        return await open_rabbitmq_tap(
            rabbitmq_adapter(broker),
            vhost,
            name,
            rate=options.rate,
            buffer=options.buffer,
            buffer_bytes=options.buffer_bytes,
            preview=options.preview,
        )
