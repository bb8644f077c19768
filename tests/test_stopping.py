"""until_stopped: the collector loops' wait for their stop event or a while (pure asyncio)."""

from __future__ import annotations

import asyncio
import contextlib
import sys

import pytest

from dashboard.core.stopping import until_stopped


async def test_it_returns_when_stopped_or_after_the_time():
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    started = loop.time()
    await until_stopped(stop, 0.05)
    assert loop.time() - started >= 0.05
    stop.set()
    started = loop.time()
    await until_stopped(stop, None)
    assert loop.time() - started < 1


async def wait_for_version(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


@pytest.mark.parametrize("wait", [until_stopped, wait_for_version], ids=["timeout", "wait_for"])
async def test_a_cancel_in_the_step_the_stop_comes_is_kept(wait):
    stop = asyncio.Event()
    task = asyncio.create_task(wait(stop, 10))
    await asyncio.sleep(0)  # the task waits on the event
    stop.set()
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        kept = True
    else:
        kept = False
    if wait is until_stopped:
        assert kept
    else:
        # What until_stopped avoids: Python 3.11's wait_for returns as if nothing was asked.
        assert kept == (sys.version_info >= (3, 12))
