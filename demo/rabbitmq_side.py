"""The RabbitMQ half of the demo, on aio-pika: a topic exchange, a work queue, dead letters.

It mirrors the shapes the dashboard has to understand in production: a topic
exchange fanning user events into a durable queue, a work queue shared by two
prefetch-1 workers, and a dead-letter exchange that catches every reject into
``dlq`` with a genuine ``x-death`` header. The connection is plain (not
robust) so that an outage is handled here: one log line, then backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
)
from aio_pika.exceptions import CONNECTION_EXCEPTIONS, ChannelInvalidStateError

from demo import payloads
from demo.common import Backoff, Pacer, Stats, Throttled
from demo.topology import (
    APP_ID,
    DLQ_ROUTING_KEY,
    USER_EVENT_KEYS,
    USER_EVENTS_BINDING,
    Names,
    dead_letter_arguments,
)

log = logging.getLogger("demo.rabbitmq")
TASK_WORKERS = 2
ERRORS = (*CONNECTION_EXCEPTIONS, asyncio.TimeoutError)


@dataclass(frozen=True)
class RabbitSettings:
    amqp_url: str
    names: Names
    rate: float  # publishes per second to user-events and task-queue together
    task_share: float  # of those, the share that goes to task-queue
    fail_share: float


async def declare(channel: AbstractChannel, names: Names) -> AbstractExchange:
    """Exchanges, queues and bindings; idempotent, safe next to the Celery worker's."""
    events = await channel.declare_exchange(
        names.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
    )
    dlx = await channel.declare_exchange(names.dlx, aio_pika.ExchangeType.DIRECT, durable=True)
    dlq = await channel.declare_queue(names.dlq, durable=True)
    await dlq.bind(dlx, DLQ_ROUTING_KEY)
    dead_letters = dead_letter_arguments(names)
    user_events = await channel.declare_queue(
        names.user_events_queue, durable=True, arguments=dead_letters
    )
    await user_events.bind(events, USER_EVENTS_BINDING)
    await channel.declare_queue(names.task_queue, durable=True, arguments=dead_letters)
    return events


class RabbitSide:
    """Connects, declares, consumes and publishes until ``stop`` is set."""

    def __init__(self, settings: RabbitSettings, stats: Stats) -> None:
        self.settings = settings
        self.names = settings.names
        self.stats = stats
        self.rng = random.Random()
        self.quiet = Throttled(log)
        self.backoff = Backoff()
        self.sessions = 0

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self._session(stop)
            except ERRORS as exc:
                delay = self.backoff.next()
                log.error(
                    "RabbitMQ at %s: %s; retrying in %.0f s",
                    _safe_url(self.settings.amqp_url),
                    _describe(exc),
                    delay,
                )
            else:
                if stop.is_set():
                    return
                delay = self.backoff.next()
                log.error("RabbitMQ connection lost; reconnecting in %.0f s", delay)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await stop.wait()

    async def _session(self, stop: asyncio.Event) -> None:
        connection = await aio_pika.connect(
            self.settings.amqp_url,
            timeout=5,
            client_properties={"connection_name": f"{APP_ID} {self.names.prefix}".strip()},
        )
        try:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
            events = await declare(channel, self.names)
            await self._start_consumers(connection)
            self.backoff.reset()
            self.sessions += 1
            log.info(
                "RabbitMQ %s: declared %s, %s, %s, %s, %s; consuming",
                "reconnected" if self.sessions > 1 else "connected",
                self.names.events_exchange,
                self.names.dlx,
                self.names.user_events_queue,
                self.names.task_queue,
                self.names.dlq,
            )
            publisher = asyncio.create_task(self._publish_forever(channel, events))
            lost = asyncio.ensure_future(connection.closed())
            stopped = asyncio.create_task(stop.wait())
            done, _ = await asyncio.wait(
                {publisher, lost, stopped}, return_when=asyncio.FIRST_COMPLETED
            )
            for task in (publisher, lost, stopped):
                task.cancel()
            failure = publisher.exception() if publisher in done else None
            if failure is not None:
                raise failure
        finally:
            with contextlib.suppress(*ERRORS):
                async with asyncio.timeout(3):
                    await connection.close()

    async def _start_consumers(self, connection: AbstractConnection) -> None:
        events_channel = await connection.channel()
        await events_channel.set_qos(prefetch_count=20)
        queue = await events_channel.get_queue(self.names.user_events_queue, ensure=False)
        await queue.consume(self._guard(self._on_user_event), consumer_tag="user-events-processor")
        for number in range(1, TASK_WORKERS + 1):
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=1)
            queue = await channel.get_queue(self.names.task_queue, ensure=False)
            await queue.consume(self._guard(self._on_task), consumer_tag=f"task-worker-{number}")

    def _guard(
        self, handler: Callable[[AbstractIncomingMessage], Awaitable[None]]
    ) -> Callable[[AbstractIncomingMessage], Awaitable[None]]:
        """Acks on a channel that closed under us fail; that is an outage, not a bug."""

        async def guarded(message: AbstractIncomingMessage) -> None:
            try:
                await handler(message)
            except ERRORS as exc:
                self.quiet.log(logging.WARNING, "ack", "could not settle a message: %s", exc)

        return guarded

    async def _on_user_event(self, message: AbstractIncomingMessage) -> None:
        try:
            payloads.check(payloads.decode(message.body, message.content_type))
        except payloads.InvalidPayload as exc:
            log.debug("rejecting %s: %s", message.routing_key, exc)
            await message.reject(requeue=False)
            self.stats.incr("amqp_dead_lettered")
            return
        if not message.redelivered and self.rng.random() < 0.03:
            await message.nack(requeue=True)  # a transient failure: comes back redelivered
            self.stats.incr("amqp_requeued")
            return
        await message.ack()
        self.stats.incr("amqp_acked")

    async def _on_task(self, message: AbstractIncomingMessage) -> None:
        await asyncio.sleep(self.rng.uniform(0.02, 0.15))  # the "work"
        try:
            payloads.check(payloads.decode(message.body, message.content_type))
        except payloads.InvalidPayload:
            await message.reject(requeue=False)
            self.stats.incr("amqp_dead_lettered")
            return
        await message.ack()
        self.stats.incr("amqp_acked")

    async def _publish_forever(self, channel: AbstractChannel, events: AbstractExchange) -> None:
        pacer = Pacer(self.settings.rate)
        while True:
            await asyncio.sleep(pacer.delay())
            if self.rng.random() < self.settings.task_share:
                payload = payloads.job(self.rng, self.settings.fail_share)
                message = self._message(payload, kind=str(payload["job"]))
                await channel.default_exchange.publish(message, self.names.task_queue)
            else:
                key = self.rng.choice(USER_EVENT_KEYS)
                message = self._message(
                    payloads.user_event(self.rng, key, self.settings.fail_share), kind=key
                )
                await events.publish(message, key)
            self.stats.incr("amqp_published")

    def _message(self, payload: dict[str, object], kind: str) -> aio_pika.Message:
        encoded = payloads.encode(payload, self.rng)
        return aio_pika.Message(
            encoded.body,
            content_type=encoded.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=uuid.uuid4().hex,
            correlation_id=uuid.uuid4().hex if self.rng.random() < 0.5 else None,
            timestamp=datetime.now(UTC),
            app_id=APP_ID,
            type=kind,
            headers={
                "x-tenant": self.rng.choice(["acme", "globex", "initech"]),
                "x-schema-version": 2,
                "x-trace-id": uuid.uuid4().hex[:16],
            },
        )


def _safe_url(url: str) -> str:
    """The URL without its password, for log lines."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        creds, _, host = rest.rpartition("@")
        rest = f"{creds.split(':', 1)[0]}:***@{host}"
    return f"{scheme}{sep}{rest}"


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ChannelInvalidStateError):
        return "connection lost"  # its own text is just a channel's repr
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
