"""Capture of one managed RabbitMQ DLQ into a sink (the database), acked only after the commit.

Features: one AMQP connection to the DLQ's vhost, one channel, one
**exclusive** consumer with manual acks and a prefetch window (an exclusive
consumer makes a second collector fail with ACCESS_REFUSED instead of
splitting the queue). Deliveries are batched (up to ``batch_size``, waiting at
most ``linger`` seconds for a batch to fill) and handed to the sink; after
``sink.store`` returns (the database commit) the whole batch is acked with one
``basic.ack(multiple=True)`` up to its highest delivery tag, then a
``basic.qos`` round trip on the same channel proves the broker has processed
that ack (the channel handles methods in order) before ``sink.acknowledged``
is told. While one batch is being stored the broker keeps delivering the next
into the prefetch window.

Crash semantics: if the process dies before the commit, nothing is stored and
the broker redelivers everything unacked. If it dies after the commit but
before the ack, the redelivered copies (``redelivered=True``) carry the same
content hash and the sink recognises them as already stored.

Connection settings: the cluster's ``amqp_url`` host and port, ``username``,
``password``, ``timeout`` and ``verify_tls``; the vhost is the DLQ's.

Limitations: a message larger than ``max_message_bytes`` stops the capture of
its DLQ (:class:`OversizeMessage`) after everything before it is stored; it
stays on the broker. Streams cannot be captured (acks do not remove anything
from a stream).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from typing import Any

import aiormq.exceptions
from aio_pika.abc import AbstractConnection
from aiormq.abc import DeliveredMessage

from brokers.base import (
    BrokerError,
    BrokerTimeout,
    BrokerUnavailable,
    ClusterConfig,
    NotFound,
)
from brokers.base.deadletters import DEFAULT_MAX_MESSAGE_BYTES, CapturedLetter, CaptureSink, too_big
from brokers.decode.metadata import amqp_failure_info
from brokers.decode.values import to_json
from brokers.rabbitmq.connection import connect, properties_of

log = logging.getLogger(__name__)

# Headers a broker adds or bumps on redelivery: not part of a message's identity.
REDELIVERY_HEADERS = frozenset({"x-delivery-count", "x-acquired-count"})


def content_hash(
    exchange: str, routing_key: str, properties: Mapping[str, Any], headers: Any, body: bytes
) -> str:
    """SHA-256 of everything that makes a message what it is (see :class:`CapturedLetter`)."""
    identity = dict(headers) if isinstance(headers, Mapping) else headers
    if isinstance(identity, dict):
        for name in REDELIVERY_HEADERS:
            identity.pop(name, None)
    head = json.dumps(
        [exchange, routing_key, properties, identity],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=True,
    ).encode("ascii")
    digest = hashlib.sha256(len(head).to_bytes(8, "big"))
    digest.update(head)
    digest.update(body)
    return digest.hexdigest()


def letter_of(delivered: DeliveredMessage, vhost: str, queue: str) -> CapturedLetter:
    props = delivered.header.properties
    properties: dict[str, Any] = {name: to_json(v) for name, v in properties_of(props).items()}
    raw_headers = props.headers if isinstance(props.headers, Mapping) else {}
    headers = to_json(raw_headers)
    delivery = delivered.delivery
    exchange = str(getattr(delivery, "exchange", "") or "")
    routing_key = str(getattr(delivery, "routing_key", "") or "")
    body = bytes(delivered.body)
    return CapturedLetter(
        dlq=queue,
        vhost=vhost,
        capture_key=content_hash(exchange, routing_key, properties, headers, body),
        info=amqp_failure_info(raw_headers, {"message_id": props.message_id}, dlq=queue),
        headers=headers,
        properties={**properties, "exchange": exchange, "routing_key": routing_key},
        body=body,
        redelivered=bool(getattr(delivery, "redelivered", False)),
    )


class RabbitMQCapture:
    def __init__(
        self,
        config: ClusterConfig,
        vhost: str,
        queue: str,
        sink: CaptureSink,
        *,
        prefetch: int = 1000,
        batch_size: int = 500,
        linger: float = 0.05,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        ack_delay: float = 0.0,
    ) -> None:
        self.config, self.vhost, self.queue, self.sink = config, vhost, queue, sink
        self.ack_delay = ack_delay  # fault tests widen the commit-to-ack window with it
        self.prefetch = max(1, prefetch)
        self.batch_size = max(1, min(batch_size, self.prefetch))
        self.linger = linger
        self.max_message_bytes = max_message_bytes
        self.where = f"queue {queue!r} in vhost {vhost!r}"

    async def run(self, stop: asyncio.Event) -> None:
        """Capture until ``stop`` is set; raise a BrokerError when the broker fails."""
        connection = await connect(self.config, self.vhost)
        try:
            await self._consume(connection, stop)
        except aiormq.exceptions.ChannelAccessRefused:
            raise BrokerError(
                f"{self.where} already has an exclusive consumer (another collector capturing it?)"
            ) from None
        except aiormq.exceptions.ChannelNotFoundEntity:
            raise NotFound(f"{self.where} does not exist") from None
        except (
            aiormq.exceptions.AMQPError,
            aiormq.exceptions.ChannelInvalidStateError,
            ConnectionError,
        ) as exc:
            raise BrokerUnavailable(f"{self.where}: AMQP failed: {exc}") from None
        except TimeoutError:
            raise BrokerTimeout(
                f"{self.where}: the broker did not confirm an ack in time; unacknowledged"
                " dead letters will be redelivered and recognised"
            ) from None
        finally:
            with contextlib.suppress(aiormq.exceptions.AMQPError, OSError, TimeoutError):
                await connection.close()

    async def _consume(self, connection: AbstractConnection, stop: asyncio.Event) -> None:
        wrapper = await connection.channel()  # kept referenced for the channel's lifetime
        channel = await wrapper.get_underlay_channel()
        await channel.basic_qos(prefetch_count=self.prefetch)
        inbox: asyncio.Queue[DeliveredMessage] = asyncio.Queue()

        async def deliver(message: DeliveredMessage) -> None:
            inbox.put_nowait(message)

        await self.sink.begin()
        await channel.basic_consume(
            self.queue,
            deliver,
            no_ack=False,
            exclusive=True,
            consumer_tag=f"mqboard-capture-{uuid.uuid4().hex[:12]}",
        )
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                batch = await self._next_batch(inbox, channel.closing, stopping)
                if batch:
                    await self._store_and_ack(channel, batch)
                if channel.is_closed:
                    raise BrokerUnavailable(f"{self.where}: the channel was closed")
        finally:
            stopping.cancel()

    async def _next_batch(
        self,
        inbox: asyncio.Queue[DeliveredMessage],
        closing: asyncio.Future[Any],
        stopping: asyncio.Future[Any],
    ) -> list[DeliveredMessage]:
        if inbox.empty():
            first = asyncio.ensure_future(inbox.get())
            await asyncio.wait({first, closing, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if not first.done():
                first.cancel()
                return []
            batch = [first.result()]
        else:
            batch = [inbox.get_nowait()]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.linger
        while len(batch) < self.batch_size:
            if not inbox.empty():
                batch.append(inbox.get_nowait())
                continue
            remaining = deadline - loop.time()
            if remaining <= 0 or stopping.done() or closing.done():
                break
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    batch.append(await inbox.get())
        return batch

    async def _store_and_ack(self, channel: Any, batch: list[DeliveredMessage]) -> None:
        oversize = next(
            (i for i, m in enumerate(batch) if len(m.body) > self.max_message_bytes), None
        )
        storable = batch if oversize is None else batch[:oversize]
        if storable:
            # Parsing headers and hashing is CPU work: off the loop, which meanwhile
            # keeps receiving the next batch into the prefetch window.
            letters = await asyncio.to_thread(
                lambda: [letter_of(m, self.vhost, self.queue) for m in storable]
            )
            result = await self.sink.store(letters)
            if self.ack_delay:
                await asyncio.sleep(self.ack_delay)
            async with asyncio.timeout(self.config.timeout + 5):
                # Only now, after the commit: ack everything up to the last stored tag.
                await channel.basic_ack(storable[-1].delivery_tag, multiple=True)
                # A synchronous method after the ack returns only once the channel has
                # processed the ack: from here on the broker will not redeliver them.
                await channel.basic_qos(prefetch_count=self.prefetch)
            await self.sink.acknowledged(result)
        if oversize is not None:
            raise too_big(self.queue, len(batch[oversize].body), self.max_message_bytes)
