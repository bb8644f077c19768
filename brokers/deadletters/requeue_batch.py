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
import time
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, cast

import aiormq
import aiormq.abc
from aiormq import Channel
from aiormq.abc import ChannelFrame
from aiormq.exceptions import PublishError
from confluent_kafka import KafkaError, KafkaException, Producer

from brokers import validate
from brokers.base import BrokerError, BrokerUnavailable, ClusterConfig
from brokers.deadletters.requeue import AmqpLetter, KafkaLetter, amqp_properties
from brokers.kafka_clients import JAVA_PARTITIONER
from brokers.rabbitmq_move.connect import close_quietly, open_connection, settle_confirms_in_order
from brokers.rabbitmq_move.messages import publish_frames, publish_method_frame


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
    """Publishes batches to one vhost of one cluster; ``close`` when done.

    The publishes of a batch are marshalled here and written as one frame
    payload on an aiormq channel in confirm mode, with a confirm future per
    publish registered in aiormq's own bookkeeping (as ``basic_publish`` does;
    see ``brokers.rabbitmq_move.engine``), so basic.ack, basic.nack and
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

    async def send(self, letters: Sequence[AmqpLetter]) -> list[Outcome]:
        """Publish every letter; one outcome per letter, in order."""
        outcomes = [_unsendable(self.vhost, letter) for letter in letters]
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


def _unsendable(vhost: str, letter: AmqpLetter) -> Outcome | None:
    """UNROUTABLE when pamqp could not send the letter's strings (never retried)."""
    try:
        validate.amqp_message(
            vhost=vhost,
            exchange=letter.exchange,
            routing_key=letter.routing_key,
            headers=letter.headers,
            properties=letter.properties,
        )
    except validate.InvalidValue as exc:
        return Outcome(Result.UNROUTABLE, f"not sent: {exc.message}")
    return None


def _unsendable_record(letter: KafkaLetter) -> Outcome | None:
    """UNROUTABLE when librdkafka could not take the record's strings (see brokers.validate)."""
    try:
        validate.kafka_record(letter.topic, letter.key, letter.value, letter.headers)
    except validate.InvalidValue as exc:
        return Outcome(Result.UNROUTABLE, f"not sent: {exc.message}")
    return None


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
                **JAVA_PARTITIONER,
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": int(max(timeout, 1) * 1000),
            }
        )
        # topic -> (its partition count, 0 when it does not exist; when it was read)
        self.topics: dict[str, tuple[int, float]] = {}

    def _partitions(self, topic: str) -> int:
        """How many partitions the topic has (0: it does not exist), cached a few seconds."""
        known = self.topics.get(topic)
        if known is not None and time.monotonic() - known[1] < self.TOPIC_CACHE_SECONDS:
            return known[0]
        try:
            meta = self.producer.list_topics(topic=topic, timeout=self.timeout)
        except KafkaException as exc:
            raise BrokerUnavailable(f"Kafka did not answer: {exc}") from None
        found = meta.topics.get(topic)
        count = len(found.partitions) if found is not None and found.error is None else 0
        self.topics[topic] = (count, time.monotonic())
        return count

    def send(self, letters: Sequence[KafkaLetter]) -> list[Outcome]:
        """Produce every letter and wait for their delivery reports; one outcome per letter."""
        outcomes = [_unsendable_record(letter) for letter in letters]
        topics = {le.topic for le, o in zip(letters, outcomes, strict=True) if o is None}
        try:
            counts = {t: self._partitions(t) for t in topics}
        except BrokerUnavailable as exc:
            return [o or Outcome(Result.UNKNOWN, f"not sent: {exc.message}") for o in outcomes]

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
            if outcomes[i] is not None:
                continue
            if not counts[letter.topic]:
                outcomes[i] = Outcome(Result.UNROUTABLE, f"unknown topic {letter.topic!r}")
                continue
            partition = letter.partition_in(counts[letter.topic])
            while True:
                try:
                    self.producer.produce(
                        letter.topic,
                        letter.value,
                        key=letter.key,
                        headers=letter.headers,
                        on_delivery=report(i, letter.topic),
                        partition=partition,
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
