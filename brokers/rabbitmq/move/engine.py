"""The move's hot path: deliveries in, batched confirmed publishes out, acks for the confirmed.

Speed: deliveries arrive within a prefetch window and are queued; one "pump"
task turns whatever is queued into a single write of many mandatory
basic.publish frames, registering a confirm future for each exactly as
aiormq's own ``basic_publish`` does (same channel attributes: ``delivery_tag``,
``confirmations``, ``message_id_delivery_tag``, ``write_queue``), so aiormq
still routes basic.ack, basic.nack and basic.return to them. A source message
is acked only after its copy is confirmed; acks go out in batches
(``basic.ack multiple`` up to the highest delivery tag whose predecessors are
all confirmed), written by the same pump, in order with the publishes.

Knowing which acks took effect: acks and publishes share one channel and
RabbitMQ handles a channel's frames in order, so the confirm of any publish
written after an ack proves that ack was processed ("fenced"). An orderly end
fences everything with a synchronous basic.qos; only a dead connection leaves
acks "in doubt".
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import time
from typing import Any, cast

import aiormq.exceptions
from aiormq import Channel
from aiormq.abc import AbstractChannel, AbstractConnection, ChannelFrame, DeliveredMessage
from aiormq.exceptions import DeliveryError, PublishError

from brokers.base import ClusterConfig, ConfigError
from brokers.rabbitmq.connection import (
    publish_frames,
    publish_method_frame,
    settle_confirms_in_order,
)
from brokers.rabbitmq.move.amqp import ack_frame, check_target, copy_properties, ready_count
from brokers.rabbitmq.move.model import Checkpoint, Command, MoveSpec, StopReason, TokenBucket

log = logging.getLogger(__name__)

FIRST_WINDOW = 64  # messages fetched before the window is fitted to their size
CHANNEL_ATTRIBUTES = ("delivery_tag", "confirmations", "message_id_delivery_tag", "write_queue")


class Mover:
    def __init__(
        self,
        config: ClusterConfig,
        spec: MoveSpec,
        connection: AbstractConnection,
        checkpoint: Checkpoint | None,
        tick: float,
    ) -> None:
        self.config, self.spec, self.connection = config, spec, connection
        self.checkpoint, self.tick = checkpoint, tick
        self.total = 0
        self.moved = 0  # acks written for confirmed copies
        self.published = 0
        self.failed = 0  # returned (unroutable) or nacked by the broker
        self.pending: list[DeliveredMessage] = []  # delivered, not yet published
        self.publishing = 0  # published, confirm awaited
        self.in_flight_ids: set[str] = set()
        self.acked_through = 0  # every delivery tag <= this one is acked
        self.confirmed: set[int] = set()  # confirmed, not yet acked
        self.ack_log: list[int] = []  # self.moved after each ack; index + 1 = epoch
        self.fenced_epoch = 0
        self.max_tag = 0
        self.ack_batch = max(1, spec.prefetch // 4)
        self.window = 0  # the prefetch count asked of RabbitMQ now
        self.window_cap = spec.prefetch
        self.seen_bytes = self.seen = 0  # delivered bodies, for the window's byte budget
        self.consumer_tags: list[str] = []
        self.bucket = TokenBucket(spec.rate_limit) if spec.rate_limit else None
        self.wake = asyncio.Event()
        self.resume = asyncio.Event()
        self.resume.set()
        self.settled = asyncio.Event()  # set while nothing awaits a confirm
        self.settled.set()
        self.stopped = asyncio.Event()
        self.reason = StopReason.COMPLETED
        self.error = ""
        self.tasks: set[asyncio.Task[Any]] = set()
        now = time.monotonic()
        self.started = self.last_delivery = self.last_confirm = now
        self.paused_for = 0.0
        self.paused_at: float | None = None
        self.rate = 0.0
        self.rate_mark = (now, 0)

    # -- setup ------------------------------------------------------------

    async def open_probe(self) -> None:
        # A separate channel for passive declares: a 404 closes the channel it happens on.
        self.probe: AbstractChannel = await self.connection.channel(publisher_confirms=False)

    async def check_ends(self) -> int:
        """The source's ready count; NotFound if the source or the target is missing."""
        depth = await self.source_depth()
        if self.spec.route is None:
            await check_target(self.probe, self.spec, self.config.timeout)
        return depth

    async def source_depth(self) -> int:
        """Ready messages in the source: the frozen "all"."""
        return await ready_count(self.probe, self.spec, self.config.timeout)

    async def open(self) -> None:
        """Check both ends and start consuming; BrokerErrors here mean nothing was touched."""
        await self.open_probe()
        depth = await self.check_ends()
        self.total = depth if self.spec.limit is None else min(self.spec.limit, depth)
        if self.total == 0:
            return
        channel = await self.connection.channel(publisher_confirms=True, on_return_raises=True)
        # aiormq's own Channel: the pump uses its confirm bookkeeping (see the docstring).
        self.raw = cast(Channel, channel)
        settle_confirms_in_order(self.raw)
        target = self.spec.target
        self.method = publish_method_frame(self.raw.number, target.exchange, target.routing_key)
        self.methods: dict[tuple[str, str], bytes] = {}
        if not all(hasattr(self.raw, name) for name in CHANNEL_ATTRIBUTES):
            raise ConfigError("this aiormq version is not supported by the mover", permanent=True)
        self.window_cap = min(self.spec.prefetch, self.total)
        if self.spec.rate_limit:
            # About a second's worth: fewer messages held unacked while waiting for tokens.
            self.window_cap = min(self.window_cap, max(1, math.ceil(self.spec.rate_limit)))
        self.raw.on_consumer_cancel_callbacks.add(self.on_broker_cancel)
        self.pump_task = asyncio.ensure_future(self.pump())
        # Start small: the window grows once the first bodies show their size.
        await self.consume(min(self.window_cap, FIRST_WINDOW))
        self.started = self.last_delivery = self.last_confirm = time.monotonic()
        self.rate_mark = (self.started, 0)

    # -- the hot path -----------------------------------------------------

    async def on_delivery(self, message: DeliveredMessage) -> None:
        tag = message.delivery_tag or 0
        if tag > self.max_tag:
            self.max_tag = tag
            self.last_delivery = time.monotonic()
        if tag == self.total:
            # The frozen selection is all delivered: take no more. Deliveries
            # already on their way are requeued at the end (marked redelivered).
            self.spawn(self.cancel_consumer())
        if tag > self.total or self.stopped.is_set():
            return  # left unacked: requeued to the source when the move ends
        self.pending.append(message)
        self.wake.set()
        self.seen += 1
        self.seen_bytes += len(message.body)
        if self.seen == FIRST_WINDOW:
            self.spawn(self.fit_window())

    async def consume(self, window: int) -> None:
        """Start a consumer with this prefetch window, then cancel the previous one.

        RabbitMQ applies basic.qos only to consumers started after it (and a
        channel-wide "global" limit is refused by quorum queues), so a new
        window is a new consumer; delivery tags stay contiguous on the channel.
        """
        timeout = self.config.timeout
        await self.raw.basic_qos(prefetch_count=window, timeout=timeout)
        ok = await self.raw.basic_consume(self.spec.source, self.on_delivery, timeout=timeout)
        previous, self.consumer_tags = self.consumer_tags, [ok.consumer_tag or ""]
        self.window, self.ack_batch = window, max(1, window // 4)
        for tag in previous:
            await self.cancel(tag)

    async def fit_window(self) -> None:
        """Fit the window to the byte budget by the average body so far (when far off)."""
        if self.stopped.is_set() or not self.channel_open():
            return
        average = max(1, self.seen_bytes // max(1, self.seen))
        wanted = max(1, min(self.window_cap, self.spec.window_bytes // average))
        if not self.window // 2 <= wanted <= self.window * 2 and self.max_tag < self.total:
            try:
                await self.consume(wanted)
            except (aiormq.exceptions.AMQPError, RuntimeError, TimeoutError):
                log.debug("resizing the move's window failed", exc_info=True)

    async def pump(self) -> None:
        """The only writer: batches of publishes, and acks for what is confirmed."""
        while not self.stopped.is_set():
            await self.wake.wait()
            self.wake.clear()
            if self.stopped.is_set() or not self.channel_open():
                return
            await self.flush_acks()
            if self.pending and self.resume.is_set():
                await self.publish_batch()

    async def publish_batch(self) -> None:
        count = len(self.pending)
        if self.bucket is not None:
            count, wait = self.bucket.take(count)
            if wait > 0:
                asyncio.get_running_loop().call_later(wait, self.wake.set)
        raw, loop = self.raw, asyncio.get_running_loop()
        epoch = len(self.ack_log)
        parts: list[bytes] = []
        taken = 0
        for message in self.pending[:count]:
            if message.header.properties.message_id in self.in_flight_ids:
                break  # one copy per id in flight: returns are matched by id; wait for it
            method = self.method_for(message)
            if method is None:
                break
            properties = copy_properties(message.header.properties, self.config.username)
            message_id = properties.message_id or ""
            try:
                parts.append(
                    publish_frames(
                        raw.number, method, message.body, properties, raw.max_content_size
                    )
                )
            except Exception as exc:
                # Never a silent hang: this message cannot be re-sent, so the
                # move stops and it stays (unacked, so requeued) in the source.
                log.exception("the move could not encode message %r", message_id)
                self.stop(StopReason.REFUSED, f"message {message_id} cannot be re-sent: {exc}")
                break
            taken += 1
            raw.delivery_tag += 1
            # A plain future, outside aiormq's future store (which costs per message):
            # if the channel dies, the supervisor stops the move without waiting for it.
            confirmation = loop.create_future()
            raw.confirmations[raw.delivery_tag] = confirmation
            raw.message_id_delivery_tag[message_id] = raw.delivery_tag
            self.in_flight_ids.add(message_id)
            on_confirm = functools.partial(
                self.on_confirm, message.delivery_tag or 0, message_id, epoch
            )
            confirmation.add_done_callback(on_confirm)
        del self.pending[:taken]
        if not parts:
            return
        self.published += taken
        self.publishing += taken
        self.settled.clear()
        await raw.write_queue.put(ChannelFrame(payload=b"".join(parts), should_close=False))

    def method_for(self, message: DeliveredMessage) -> bytes | None:
        """The publish frame for this copy: the move's target, or the message's own route."""
        route = self.spec.route
        if route is None:
            return self.method
        headers = message.header.properties.headers or {}
        target = route(headers, message.routing_key or "")
        if target is None:
            message_id = message.header.properties.message_id or "(no id)"
            self.stop(
                StopReason.REFUSED,
                f"message {message_id} has no known target (no origin in its headers): the move"
                " stopped there; it and every message after it are still in the source",
            )
            return None
        method = self.methods.get(target)
        if method is None:
            method = self.methods[target] = publish_method_frame(self.raw.number, *target)
        return method

    def on_confirm(self, tag: int, message_id: str, epoch: int, done: asyncio.Future[Any]) -> None:
        self.publishing -= 1
        if not self.publishing:
            self.settled.set()
        self.in_flight_ids.discard(message_id)
        self.raw.message_id_delivery_tag.pop(message_id, None)
        exc = None if done.cancelled() else done.exception()
        if done.cancelled() or (exc is not None and not isinstance(exc, DeliveryError)):
            return  # the channel or connection died; the main loop reports it
        if isinstance(exc, PublishError):
            self.failed += 1
            reply = getattr(exc.frame, "reply_text", "") or "NO_ROUTE"
            self.stop(
                StopReason.UNROUTABLE,
                f"{self.target_text()} did not route a message ({reply}): the move"
                " stopped; that message and every unconfirmed one went back to the source",
            )
            return
        if exc is not None:
            self.failed += 1
            self.stop(
                StopReason.REFUSED,
                f"RabbitMQ refused the copy for {self.target_text()} (basic.nack):"
                " is the target full (x-max-length with reject-publish) or unavailable?",
            )
            return
        self.last_confirm = time.monotonic()
        if epoch > self.fenced_epoch:
            self.fenced_epoch = epoch
        self.confirmed.add(tag)
        if len(self.confirmed) >= self.ack_batch or not self.publishing or self.pending:
            self.wake.set()

    async def flush_acks(self) -> None:
        """Ack (multiple) up to the highest tag whose predecessors are all confirmed."""
        through = self.acked_through
        while through + 1 in self.confirmed:
            through += 1
            self.confirmed.discard(through)
        if through > self.acked_through:
            count = through - self.acked_through
            self.acked_through = through
            await self.send_ack(through, count, multiple=True)
        if self.moved >= self.total:
            self.stop(StopReason.COMPLETED)

    async def send_ack(self, tag: int, count: int, *, multiple: bool) -> None:
        if not self.channel_open():
            return  # not sent: the main loop reports the dead channel
        frame = ack_frame(self.raw.number, tag, multiple=multiple)
        await self.raw.write_queue.put(ChannelFrame(payload=frame, should_close=False))
        self.moved += count
        self.ack_log.append(self.moved)

    def fenced(self) -> int:
        return self.ack_log[self.fenced_epoch - 1] if self.fenced_epoch else 0

    # -- control ----------------------------------------------------------

    def stop(self, reason: StopReason, error: str = "") -> None:
        if not self.stopped.is_set():
            self.reason, self.error = reason, error
            self.stopped.set()
            self.wake.set()

    def spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def on_broker_cancel(self, frame: Any) -> None:
        self.stop(
            StopReason.SOURCE_DELETED,
            f"RabbitMQ cancelled the move's consumer: was queue {self.spec.source!r} deleted?",
        )

    async def cancel_consumer(self) -> None:
        for tag in self.consumer_tags:
            await self.cancel(tag)

    async def cancel(self, tag: str) -> None:
        if tag and tag in self.raw.consumers and self.channel_open():
            try:
                await self.raw.basic_cancel(tag, timeout=self.config.timeout)
            except (aiormq.exceptions.AMQPError, RuntimeError, TimeoutError):
                log.debug("cancelling a consumer of the move failed", exc_info=True)

    def apply(self, command: Command) -> None:
        now = time.monotonic()
        if command is Command.CANCEL:
            self.stop(StopReason.CANCELLED)
        elif command is Command.PAUSE and self.resume.is_set():
            self.resume.clear()
            self.paused_at = now
        elif command is Command.RUN and not self.resume.is_set():
            if self.bucket is not None:
                self.bucket.reset()
            self.resume.set()
            self.wake.set()
            self.paused_for += now - (self.paused_at or now)
            self.paused_at = None

    def target_text(self) -> str:
        return "the message's own target" if self.spec.route else self.spec.target.describe()

    def channel_open(self) -> bool:
        return not self.raw.is_closed

    def active_seconds(self) -> float:
        now = time.monotonic()
        paused = self.paused_for + (now - self.paused_at if self.paused_at is not None else 0)
        return max(0.0, now - self.started - paused)
