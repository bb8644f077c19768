"""Waiting in the collector's loops: until their stop event is set, or a while has passed."""

from __future__ import annotations

import asyncio
import contextlib


async def until_stopped(stop: asyncio.Event, seconds: float | None) -> None:
    """Return when ``stop`` is set or after ``seconds`` (None: only when it is set).

    ``asyncio.timeout``, not ``wait_for``: on Python 3.11 ``wait_for`` loses a cancel
    that arrives in the step its awaitable completes, and a loop cancelled then (a
    collector that lost its lease) would go round once more instead of ending.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
