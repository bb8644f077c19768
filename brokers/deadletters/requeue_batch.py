"""Sending many dead letters back at once: one connection, confirms in flight, outcomes per letter.

Features: ``AmqpBatchSender`` keeps one connection and one confirm channel per
vhost and publishes a whole batch with mandatory routing, every confirm
awaited together (RabbitMQ confirms persistent messages in groups, so a batch
costs about one disk sync, not one per message). Exchanges are checked first
with a passive declare on a separate channel (a publish to a missing exchange
would close the confirm channel and fail the whole batch), so a letter whose
exchange is gone is ``UNROUTABLE`` without being sent. ``KafkaBatchSender``
keeps one idempotent producer, checks each topic once per batch (never
creating it) and produces the batch with one flush.

Each letter gets an :class:`Outcome`: ``SENT`` (confirmed / delivery report
without error), ``UNROUTABLE`` (missing exchange or topic, or returned: no
queue bound) or ``UNKNOWN`` (the connection died or no confirm came in time:
it may or may not have arrived). Callers resend ``UNKNOWN`` letters, so a
letter is at least once at its origin, and a duplicate carries the same
message id (RabbitMQ) or the same key and value (Kafka).

Settings: the cluster's ``timeout`` bounds connects, declares and each batch's
confirms. Limitations: a batch is all in memory (the caller sizes it); the
AMQP ``user-id`` property moves to a header as in ``requeue``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from aiormq.exceptions import PublishError
from confluent_kafka import KafkaError, KafkaException, Producer

from brokers.base import BrokerUnavailable, ClusterConfig
from brokers.deadletters.rabbitmq_capture import connect
from brokers.deadletters.requeue import AmqpLetter, KafkaLetter, amqp_message


class Result(StrEnum):
    SENT = "sent"
    UNROUTABLE = "unroutable"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Outcome:
    result: Result
    message: str = ""


SENT = Outcome(Result.SENT)


class AmqpBatchSender:
    """Publishes batches to one vhost of one cluster; ``close`` when done."""

    def __init__(self, config: ClusterConfig, vhost: str) -> None:
        self.config, self.vhost = config, vhost
        self.connection: AbstractConnection | None = None
        self.channel: AbstractChannel | None = None
        self.probe: AbstractChannel | None = None
        self.exchanges: dict[str, AbstractExchange | None] = {}

    async def _open(self) -> tuple[AbstractConnection, AbstractChannel]:
        if self.connection is None or self.connection.is_closed:
            self.connection = await connect(self.config, self.vhost)
            self.channel = self.probe = None
        if self.channel is None or self.channel.is_closed:
            self.channel = await self.connection.channel(
                publisher_confirms=True, on_return_raises=True
            )
            self.exchanges.clear()
        return self.connection, self.channel

    async def _exchange(self, name: str) -> AbstractExchange | None:
        """The exchange to publish to, or None when it does not exist (cached per channel)."""
        if name in self.exchanges:
            return self.exchanges[name]
        connection, channel = await self._open()
        if not name:
            found: AbstractExchange | None = channel.default_exchange
        else:
            if self.probe is None or self.probe.is_closed:
                self.probe = await connection.channel(publisher_confirms=False)
            try:
                await self.probe.declare_exchange(name, passive=True, timeout=self.config.timeout)
                found = await channel.get_exchange(name, ensure=False)
            except aiormq.exceptions.ChannelNotFoundEntity:
                found = None  # and the probe channel is closed: reopened next time
        self.exchanges[name] = found
        return found

    async def send(self, letters: Sequence[AmqpLetter]) -> list[Outcome]:
        """Publish every letter; one outcome per letter, in order."""
        try:
            await self._open()
            targets = [await self._exchange(letter.exchange) for letter in letters]
        except (aiormq.exceptions.AMQPError, OSError, TimeoutError, BrokerUnavailable) as exc:
            await self.close()
            return [Outcome(Result.UNKNOWN, f"not sent: {_why(exc)}")] * len(letters)
        outcomes: list[Outcome | None] = [None] * len(letters)
        pending: list[tuple[int, Any]] = []
        for i, (letter, exchange) in enumerate(zip(letters, targets, strict=True)):
            if exchange is None:
                outcomes[i] = Outcome(
                    Result.UNROUTABLE,
                    f"unroutable: exchange {letter.exchange!r} in vhost {self.vhost!r}"
                    " does not exist",
                )
                continue
            publish = exchange.publish(
                amqp_message(letter),
                routing_key=letter.routing_key,
                mandatory=True,
                timeout=self.config.timeout,
            )
            pending.append((i, asyncio.ensure_future(publish)))
        results = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        broken = False
        for (i, _), result in zip(pending, results, strict=True):
            letter = letters[i]
            if not isinstance(result, BaseException):
                outcomes[i] = SENT
            elif isinstance(result, PublishError):  # basic.return; a nack is retried
                outcomes[i] = Outcome(
                    Result.UNROUTABLE,
                    f"unroutable: no queue is bound to exchange {letter.exchange or '(default)'!r}"
                    f" in vhost {self.vhost!r} for routing key {letter.routing_key!r}",
                )
            else:
                broken = True
                outcomes[i] = Outcome(Result.UNKNOWN, f"no confirm: {_why(result)}")
        if broken:
            await self.close()
        return [o or Outcome(Result.UNKNOWN, "not sent") for o in outcomes]

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        self.channel = self.probe = None
        self.exchanges.clear()
        if connection is not None:
            # Closing a connection that already died can fail in many ways; it is gone anyway.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), self.config.timeout)


def _why(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class KafkaBatchSender:
    """Produces batches with one idempotent producer. Blocking: call from a worker thread."""

    TOPIC_CACHE_SECONDS = 10.0

    def __init__(self, client_config: dict[str, Any], timeout: float) -> None:
        self.timeout = timeout
        self.producer = Producer(
            {
                **client_config,
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": int(max(timeout, 1) * 1000),
            }
        )
        self.topics: dict[str, tuple[bool, float]] = {}

    def _topic_exists(self, topic: str) -> bool:
        known = self.topics.get(topic)
        if known is not None and time.monotonic() - known[1] < self.TOPIC_CACHE_SECONDS:
            return known[0]
        try:
            meta = self.producer.list_topics(topic=topic, timeout=self.timeout)
        except KafkaException as exc:
            raise BrokerUnavailable(f"Kafka did not answer: {exc}") from None
        found = meta.topics.get(topic)
        exists = bool(found is not None and found.error is None and found.partitions)
        self.topics[topic] = (exists, time.monotonic())
        return exists

    def send(self, letters: Sequence[KafkaLetter]) -> list[Outcome]:
        """Produce every letter and wait for their delivery reports; one outcome per letter."""
        outcomes: list[Outcome | None] = [None] * len(letters)
        try:
            exists = {t: self._topic_exists(t) for t in {letter.topic for letter in letters}}
        except BrokerUnavailable as exc:
            return [Outcome(Result.UNKNOWN, f"not sent: {exc.message}")] * len(letters)

        def report(i: int, topic: str) -> Any:
            def on_delivery(error: KafkaError | None, _message: Any) -> None:
                if error is None:
                    outcomes[i] = SENT
                elif error.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC):
                    self.topics.pop(topic, None)
                    outcomes[i] = Outcome(Result.UNROUTABLE, f"unknown topic {topic!r}")
                else:
                    outcomes[i] = Outcome(Result.UNKNOWN, f"topic {topic!r}: {error.str()}")

            return on_delivery

        for i, letter in enumerate(letters):
            if not exists[letter.topic]:
                outcomes[i] = Outcome(Result.UNROUTABLE, f"unknown topic {letter.topic!r}")
                continue
            while True:
                try:
                    self.producer.produce(
                        letter.topic,
                        letter.value,
                        key=letter.key,
                        headers=letter.headers,
                        on_delivery=report(i, letter.topic),
                    )
                    break
                except BufferError:
                    self.producer.poll(0.05)  # the local queue is full: let it drain
        self.producer.flush(self.timeout + 1)
        return [
            o or Outcome(Result.UNKNOWN, f"no delivery report within {self.timeout:g} s")
            for o in outcomes
        ]

    def close(self) -> None:
        self.producer.flush(self.timeout)
