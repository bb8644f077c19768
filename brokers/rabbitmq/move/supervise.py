"""Watching a move: progress, pause, cancel, stalls, an empty source; then an orderly end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import aiormq.exceptions

from brokers.base import BrokerError, BrokerTimeout
from brokers.rabbitmq.move.amqp import describe
from brokers.rabbitmq.move.engine import FIRST_WINDOW, Mover
from brokers.rabbitmq.move.model import MoveProgress, MoveResult, StopReason

log = logging.getLogger(__name__)

IDLE_SECONDS = 1.0  # no delivery for this long and nothing held: ask whether the source is empty
AMQP_ERRORS = (aiormq.exceptions.AMQPError, aiormq.exceptions.ChannelInvalidStateError)


async def supervise(mover: Mover) -> MoveResult:
    """Open the move, watch it until it stops, end it in order; only setup raises BrokerErrors."""
    try:
        async with asyncio.timeout(mover.config.timeout * 3):
            await mover.open()
    except TimeoutError:
        raise BrokerTimeout(
            f"RabbitMQ did not open the move within {mover.config.timeout * 3:g} s"
        ) from None
    if mover.total == 0:
        return result(mover)
    closing = mover.raw.closing
    stopped = asyncio.ensure_future(mover.stopped.wait())
    try:
        while not mover.stopped.is_set():
            done, _ = await asyncio.wait({closing, stopped}, timeout=mover.tick)
            if closing in done:
                on_channel_closed(mover, closing)
                break
            if not done:
                await on_tick(mover)
    finally:
        stopped.cancel()
        closing.cancel()
    await finish(mover)
    if mover.checkpoint is not None:
        await report(mover)
    return result(mover)


def on_channel_closed(mover: Mover, closing: asyncio.Future[Any]) -> None:
    exc = None if closing.cancelled() else closing.exception()
    reason = describe(exc) if exc is not None else "closed"
    if mover.connection.is_closed or isinstance(exc, aiormq.exceptions.AMQPConnectionError):
        mover.stop(
            StopReason.CONNECTION_LOST,
            f"the connection to RabbitMQ was lost ({reason}); every message not moved"
            " is back in the source queue",
        )
    else:
        mover.stop(StopReason.REFUSED, f"RabbitMQ closed the move's channel: {reason}")


async def on_tick(mover: Mover) -> None:
    now = time.monotonic()
    if mover.checkpoint is not None:
        await report(mover)
    await mover.flush_acks()
    if mover.seen >= FIRST_WINDOW:
        await mover.fit_window()  # bodies may change size along the queue
    running = mover.resume.is_set()
    if mover.publishing and now - mover.last_confirm > mover.spec.stall_timeout:
        mover.stop(
            StopReason.STALLED,
            f"RabbitMQ confirmed nothing for {mover.spec.stall_timeout:g} s"
            " (does a memory or disk alarm block publishers?)",
        )
        return
    idle = now - max(mover.last_delivery, mover.last_confirm) >= IDLE_SECONDS
    if idle and running and not mover.publishing and not mover.pending and not mover.confirmed:
        try:
            depth = await mover.source_depth()
        except BrokerError as exc:
            mover.stop(StopReason.SOURCE_DELETED, exc.message)
            return
        except AMQP_ERRORS:
            return  # the main loop sees the dead connection
        if depth == 0:
            mover.stop(StopReason.SOURCE_EMPTY)


async def report(mover: Mover) -> None:
    assert mover.checkpoint is not None
    try:
        mover.apply(await mover.checkpoint(progress(mover)))
    except Exception:
        # The caller's bookkeeping failing is no reason to drop a move half-way:
        # it goes on, and the result still says exactly what happened.
        log.exception("the move's checkpoint failed; the move goes on")


def progress(mover: Mover) -> MoveProgress:
    now = time.monotonic()
    mark_time, mark_done = mover.rate_mark
    if now - mark_time >= 0.2:
        current = (mover.moved - mark_done) / (now - mark_time)
        mover.rate = current if mover.rate == 0 else 0.5 * mover.rate + 0.5 * current
        mover.rate_mark = (now, mover.moved)
    paused = mover.paused_at is not None
    return MoveProgress(
        done=mover.moved,
        total=mover.total,
        rate=0.0 if paused else mover.rate,
        elapsed=mover.active_seconds(),
        paused=paused,
        in_flight=mover.publishing + len(mover.pending),
    )


async def finish(mover: Mover) -> None:
    """Take no more, settle what is in flight, ack the confirmed, requeue the rest, fence."""
    mover.stop(mover.reason, mover.error)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(mover.config.timeout):
            await mover.pump_task
    if not mover.channel_open():
        return
    await mover.cancel_consumer()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(mover.config.timeout):
            await mover.settled.wait()
    if not mover.channel_open():
        return
    await mover.flush_acks()
    for tag in sorted(mover.confirmed):
        # Confirmed copies after a gap (an unroutable message) are acked one by one.
        await mover.send_ack(tag, 1, multiple=False)
    mover.confirmed.clear()
    try:
        if mover.max_tag > mover.acked_through:
            await mover.raw.basic_nack(mover.max_tag, multiple=True, requeue=True, wait=False)
        # basic.qos is synchronous: its answer proves every ack before it was processed.
        await mover.raw.basic_qos(prefetch_count=mover.window, timeout=mover.config.timeout)
        mover.fenced_epoch = len(mover.ack_log)
    except (*AMQP_ERRORS, TimeoutError):
        log.info("the move's final fence failed; its last acks are in doubt", exc_info=True)


def result(mover: Mover) -> MoveResult:
    fenced = mover.fenced()
    return MoveResult(
        moved=mover.moved,
        total=mover.total,
        reason=mover.reason,
        error=mover.error,
        in_doubt=mover.moved - fenced,
        possible_duplicates=max(0, mover.published - mover.failed - fenced),
        published=mover.published,
        failed=mover.failed,
        elapsed=mover.active_seconds(),
    )
