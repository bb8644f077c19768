"""A newer sample reaches the lists without a request waiting for it: until its lists are
built in the background, requests are answered from the sample before, with that
sample's time; then from the new one."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime

import pytest

from brokers.base.metrics import ClusterSample, Point, values_of
from brokers.rabbitmq.models import QueueQuery
from dashboard.browse.rabbitmq.listing import QueueIndex
from dashboard.metrics import snapshot_lists
from dashboard.metrics.redis_keys import async_client, key
from dashboard.metrics.snapshot import write_sample, write_status

pytestmark = [pytest.mark.redis]

QUERY = QueueQuery(vhost="v", sort="depth", reverse=True)


async def publish_sample(slug: str, at: float, depths: dict[str, int]) -> None:
    points = tuple(Point("queue", f"v/{name}", values_of(depth=d)) for name, d in depths.items())
    sample = ClusterSample(
        slug=slug,
        kind="rabbitmq",
        time=datetime.fromtimestamp(at, UTC),
        totals=values_of(depth=sum(depths.values())),
        points=points,
        consumers=None,
        seconds=0.1,
    )
    await write_sample(sample, 5.0)
    await write_status(slug, {"ok": True, "sampled_at": at, "checked_at": at, "interval": 5.0})


async def page_of(slug: str) -> tuple[list[str], float]:
    listing = await snapshot_lists.read_listing(slug, "queues", QueueIndex.build)
    assert not isinstance(listing, str), listing
    page = listing.index.page(QUERY, listing.freshness)
    return [row.name for row in page.items], listing.freshness.as_of.timestamp()


async def test_a_newer_sample_is_served_once_its_lists_are_built_and_the_older_meanwhile():
    slug = f"refresh-{uuid.uuid4().hex[:8]}"
    snapshot_lists.forget()
    try:
        first = time.time() - 2
        await publish_sample(slug, first, {"a": 1, "b": 2})
        names, as_of = await page_of(slug)
        assert names == ["b", "a"]
        assert as_of == pytest.approx(first, abs=0.01)

        second = first + 1
        await publish_sample(slug, second, {"a": 5, "b": 2, "c": 3})
        deadline = time.monotonic() + 20
        while True:
            names, as_of = await page_of(slug)
            if as_of == pytest.approx(first, abs=0.01):
                # The sample before, whole and with its own time, while the new one builds.
                assert names == ["b", "a"]
            else:
                assert as_of == pytest.approx(second, abs=0.01)
                assert names == ["a", "c", "b"]
                break
            assert time.monotonic() < deadline, "the newer sample never reached the list"
            await asyncio.sleep(0.2)
    finally:
        snapshot_lists.forget()
        await async_client().delete(key("latest", slug), key("status", slug))
