"""Dead-letter capture: one task per managed DLQ, kept in step with the database.

Every interval the loop reads the active managed DLQs and starts a capture
task for each new one and stops the tasks of those let go; unmanaged DLQs are
never touched. A task runs its engine (``brokers.<kind>.deadletters``) until it is
stopped; when the broker or the database fails it records why on the managed
DLQ (shown on the dead-letter queues page) and starts again after a backoff
(1 s doubling up to ``MQB_DLQ_CAPTURE_MAX_BACKOFF``).

Stopping never loses anything: an engine finishes the batch it is storing,
and what it had received but not stored is unacknowledged, so the broker
keeps it (RabbitMQ requeues it, Kafka's committed offset has not moved).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from django.conf import settings

from brokers.base import BrokerError
from dashboard.core.leader import LeaseLost
from dashboard.core.stopping import until_stopped
from dashboard.deadletters.capture import (
    get_capture_targets,
    make_capture_engine,
    record_capture_error,
)
from dashboard.deadletters.store import CaptureTarget

log = logging.getLogger("dashboard.collector.capture")
HEALTHY_AFTER = 60.0  # seconds of running that reset the backoff


@dataclass
class Running:
    target: CaptureTarget
    stop: asyncio.Event
    task: asyncio.Task[None]


async def capture_forever(target: CaptureTarget, stop: asyncio.Event) -> None:
    where = f"{target.slug} {target.vhost + '/' if target.vhost else ''}{target.name}"
    backoff = 1.0
    while not stop.is_set():
        started = time.monotonic()
        try:
            log.info("capturing %s", where)
            await make_capture_engine(target).run(stop)
            continue
        except LeaseLost as exc:
            # Another collector leads now: stop, and leave the DLQ's status to it.
            log.warning("capture of %s stopped: %s", where, exc)
            await stop.wait()
            return
        except BrokerError as exc:
            problem = exc.message
            log.warning("capture of %s stopped: %s", where, problem)
        except Exception as exc:  # a database or library bug must not end capture for good
            problem = f"internal error: {type(exc).__name__}: {exc}"
            log.exception("capture of %s crashed", where)
        if time.monotonic() - started > HEALTHY_AFTER:
            backoff = 1.0
        try:
            await record_capture_error(target, problem)
        except Exception:  # the database may be what failed
            log.exception("cannot record the capture error of %s", where)
        await until_stopped(stop, backoff)
        backoff = min(backoff * 2, settings.MQB_DLQ_CAPTURE_MAX_BACKOFF)


def reconcile(running: dict[int, Running], targets: list[CaptureTarget]) -> None:
    """Start tasks for newly managed DLQs, stop those let go (or whose target changed)."""
    wanted = {t.managed_id: t for t in targets}
    for managed_id, item in list(running.items()):
        if wanted.get(managed_id) != item.target:
            item.stop.set()
        if item.task.done():
            del running[managed_id]
    for managed_id, target in wanted.items():
        if managed_id not in running:
            stop = asyncio.Event()
            task = asyncio.create_task(capture_forever(target, stop), name=f"capture-{managed_id}")
            running[managed_id] = Running(target, stop, task)


async def run(stop: asyncio.Event, interval: float) -> None:
    running: dict[int, Running] = {}
    loop = asyncio.get_running_loop()
    try:
        while not stop.is_set():
            started = loop.time()
            try:
                reconcile(running, await get_capture_targets())
            except Exception:  # a database hiccup: try again next interval
                log.exception("cannot read the managed dead-letter queues")
            await until_stopped(stop, max(0.1, interval - (loop.time() - started)))
    finally:
        for item in running.values():
            item.stop.set()
        if running:
            await asyncio.wait([item.task for item in running.values()], timeout=30)
