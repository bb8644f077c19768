"""One running tail per (cluster, entity) per web process, shared by its viewers.

A :class:`Tail` opens its broker tap when the first viewer joins and closes it
(tap queue deleted, Kafka consumer closed) when the last one leaves. It
reopens the tap with backoff after a broker error, and stays idle, saying why,
when the entity cannot be tapped. The tap paces what it shows to the tail's
rate, and every viewer gets what the tap shows (a viewer joins later, never
faster), so no viewer gets more than the rate without a limiter of its own;
a second limiter at the same rate would refuse some of the tap's messages,
whose spacing it sees with a few microseconds of jitter. Each :class:`Viewer`
has a bounded queue of events; what a full queue keeps from it (a slow
socket) is added to its skipped count, on top of what the tap itself skipped.

Each message is rendered once per tail (:class:`RenderedTailed`: its model
and its JSON text); a viewer queues a :class:`TailFrame` that embeds that
text, so the cost per viewer is a string format and a socket write.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from brokers.base import BrokerError
from brokers.base.tail import NotTappable, TailSource
from dashboard.core.limits import Busy
from dashboard.tail.events import RenderedTailed, TailFrame, TailStatus
from dashboard.tail.render import message_json

TailEvent = TailFrame | TailStatus

log = logging.getLogger(__name__)

TailKey = tuple[str, ...]
Opener = Callable[[], Awaitable[TailSource]]
MAX_BACKOFF = 15.0

_tails: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[TailKey, Tail]] = (
    weakref.WeakKeyDictionary()
)


class Viewer:
    def __init__(self, tail: Tail, rate: int) -> None:
        self.tail = tail
        self.rate = rate
        self.skipped = 0
        self.exact = True
        self.shown = 0
        # Two seconds of messages; a socket slower than that loses (and counts) the rest.
        self._events: asyncio.Queue[TailEvent] = asyncio.Queue(maxsize=2 * rate + 8)
        self._left = False

    def offer(self, message: RenderedTailed) -> None:
        if self._events.full():
            self.skipped += 1
            return
        self.shown += 1
        self._events.put_nowait(TailFrame(message, self.skipped, self.exact, self.shown))

    def add_skipped(self, count: int, exact: bool) -> None:
        self.skipped += count
        self.exact = self.exact and exact

    def notify(self, event: TailEvent) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            self._events.put_nowait(event)

    def counts(self) -> dict[str, Any]:
        return {"skipped": self.skipped, "skipped_exact": self.exact, "shown": self.shown}

    def status(self) -> TailStatus:
        return TailStatus(**self.tail.status(), rate=self.rate, **self.counts())

    async def next_event(self, tick: float = 1.0) -> TailEvent:
        """The next message or state change, or a status tick after ``tick`` quiet seconds."""
        if not self._events.empty():
            return self._events.get_nowait()  # no timer and no task for a queued event
        # asyncio.timeout, not wait_for: on Python 3.11 wait_for can swallow a cancel that
        # arrives as the get completes, and a viewer's loop would outlive its consumer.
        try:
            async with asyncio.timeout(tick):
                return await self._events.get()
        except TimeoutError:
            return self.status()

    async def leave(self) -> None:
        """Stop receiving; the tail stops when its last viewer has left."""
        if self._left:
            return
        self._left = True
        await self.tail.remove(self)


class Tail:
    def __init__(self, key: TailKey, opener: Opener) -> None:
        self.key = key
        self.opener = opener
        self.viewers: set[Viewer] = set()
        self.state = "starting"
        self.message = ""
        self.notes: tuple[str, ...] = ()
        self.counting = ""
        self.source: TailSource | None = None
        self.task: asyncio.Task[None] | None = None

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "message": self.message,
            "notes": list(self.notes),
            "counting": self.counting,
        }

    def start(self) -> None:
        self.task = asyncio.create_task(self._run(), name=f"tail {self.key!r}")
        self.task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("tail %r stopped", self.key, exc_info=task.exception())
            self._set_state("error", "the tail stopped on an internal error (see the log)")

    def _set_state(self, state: str, message: str = "") -> None:
        self.state, self.message = state, message
        for viewer in list(self.viewers):
            viewer.notify(viewer.status())

    async def _run(self) -> None:
        backoff = 1.0
        while True:
            try:
                self.source = await self.opener()
                self.notes, self.counting = self.source.notes, self.source.counting
                self._set_state("running")
                backoff = 1.0
                async with contextlib.aclosing(self.source.batches()) as batches:
                    async for batch in batches:
                        messages = [RenderedTailed.of(message_json(m)) for m in batch.messages]
                        for viewer in list(self.viewers):
                            viewer.add_skipped(batch.skipped, batch.skipped_exact)
                            for message in messages:
                                viewer.offer(message)
            except NotTappable as exc:
                self._set_state("untappable", exc.message)
                return  # nothing will change that by retrying; the viewers see why
            except BrokerError as exc:
                log.info("tail %r failed: %s", self.key, exc.message)
                self._set_state("error", exc.message)
            finally:
                await self._close_source()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
            self._set_state("starting", "reconnecting")

    async def _close_source(self) -> None:
        source, self.source = self.source, None
        if source is not None:
            # Shielded: a cancelled tail must still delete its tap queue.
            await asyncio.shield(source.close())

    async def remove(self, viewer: Viewer) -> None:
        self.viewers.discard(viewer)
        if self.viewers:
            return
        tails = _tails.get(asyncio.get_running_loop(), {})
        if tails.get(self.key) is self:
            del tails[self.key]
        await self.stop()

    async def stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._close_source()


async def join(key: TailKey, opener: Opener, rate: int, max_running: int = 0) -> Viewer:
    """A new viewer of the tail ``key``, started with ``opener`` if nobody watches it yet.

    :class:`Busy` when starting it would make more than ``max_running`` tails
    (0: no limit); joining a running tail costs no thread and is always allowed.
    """
    tails = _tails.setdefault(asyncio.get_running_loop(), {})
    tail = tails.get(key)
    if tail is None and 0 < max_running <= len(tails):
        raise Busy(
            f"This server already runs {len(tails)} live tails, its most"
            f" (MQB_TAIL_MAX_RUNNING={max_running}); try again when some have stopped.",
            retry_after=30,
        )
    if tail is None:
        tail = tails[key] = Tail(key, opener)
        tail.start()
    viewer = Viewer(tail, rate)
    tail.viewers.add(viewer)
    return viewer


def running_tails() -> dict[TailKey, Tail]:
    """The tails of this event loop (for tests and diagnostics)."""
    return dict(_tails.get(asyncio.get_running_loop(), {}))
