"""A cancelled redis.asyncio command ends cancelled, whichever step of it the cancel meets."""

from __future__ import annotations

import asyncio
import contextlib

import pytest
import redis.asyncio
from channels.layers import get_channel_layer

from tests.settings import RUN_ID

pytestmark = pytest.mark.redis

# Enough loop steps to cover a new connection's handshake (HELLO, CLIENT ...),
# the command's send and its read.
STEPS = 40


async def test_a_blocking_pop_cancelled_at_any_step_is_cancelled(redis_url):
    key = f"mqb-test-{RUN_ID}-cancel"
    not_cancelled = []
    for steps in range(STEPS):
        client = redis.asyncio.Redis.from_url(redis_url, socket_timeout=5)
        try:
            # A cancel dropped on the way would let the pop return None after its second.
            task = asyncio.ensure_future(client.bzpopmin(key, timeout=1))
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if not task.cancelled():
                not_cancelled.append(steps)
        finally:
            await client.aclose()
    assert not_cancelled == []


async def test_a_channel_layer_receive_cancelled_at_any_step_ends(redis_url):
    layer = get_channel_layer()
    for steps in range(STEPS):
        channel = await layer.new_channel()
        task = asyncio.create_task(layer.receive(channel))
        for _ in range(steps):
            await asyncio.sleep(0)
        task.cancel()
        # channels_redis pops again while nothing came: a lost cancel never ends here.
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled(), f"cancelled after {steps} steps"
