"""The metrics capability, run for every kind against the real broker.

Each kind has a fixture in ``FILLED`` that makes one entity (a queue, a topic)
holding ``DEPTH`` messages, and names the sampler options of the other kinds
(which this kind must ignore).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import pytest

from brokers.base import Broker, ClusterConfig
from brokers.base.contract import BrokerKind
from brokers.base.metrics import (
    FIELDS,
    ClusterSample,
    Metrics,
    Point,
    Sampler,
    SamplerOptions,
    queue_entity,
    value,
)
from brokers.registry import KINDS, make_broker, require
from tests.support.metrics import create_topic, declare, delete_topics, produce, publish, unique

DEPTH = 3
FILLED = {"rabbitmq": "filled_rabbitmq_queue", "kafka": "filled_kafka_topic"}


@dataclass(frozen=True)
class Filled:
    """An entity holding DEPTH messages, and options that do not apply to its kind."""

    entity_type: str
    entity: str
    foreign: SamplerOptions


@pytest.fixture
def filled_rabbitmq_queue(rabbitmq_vhost: str) -> Filled:
    name = unique("contract")
    declare(rabbitmq_vhost, name)
    publish(rabbitmq_vhost, name, DEPTH)
    foreign = SamplerOptions(
        vhosts=(rabbitmq_vhost,), topics="^no-such-topic$", max_groups=0, lag_probes=0
    )
    return Filled("queue", queue_entity(rabbitmq_vhost, name), foreign)


@pytest.fixture
def filled_kafka_topic(unique_name: str) -> Iterator[Filled]:
    create_topic(unique_name)
    produce(unique_name, DEPTH)
    yield Filled(
        "topic", unique_name, SamplerOptions(vhosts=("no-such-vhost",), page_concurrency=1)
    )
    delete_topics(unique_name)


@pytest.fixture
def filled(request: pytest.FixtureRequest, kind_config: ClusterConfig) -> Filled:
    found: Filled = request.getfixturevalue(FILLED[kind_config.kind])
    return found


@pytest.fixture
def metrics(kind_config: ClusterConfig) -> Metrics:
    return require(kind_config, lambda k: k.metrics, "metrics")


@pytest.fixture
async def broker(kind_config: ClusterConfig) -> AsyncIterator[Broker]:
    async with make_broker(kind_config) as broker:
        yield broker


async def poll(check: Callable[[], Awaitable[Point | None]], seconds: float = 30) -> Point | None:
    """The first answer of ``check``; None when there is none within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        found = await check()
        if found is not None or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.5)


async def point_at_depth(
    sampler: Sampler, broker: Broker, filled: Filled
) -> tuple[Point | None, ClusterSample | None]:
    """Full samples until one reports the entity at DEPTH (the management API's counts lag)."""
    samples: list[ClusterSample] = []

    async def check() -> Point | None:
        samples.append(await sampler.full(broker))
        points = {(p.entity_type, p.entity): p for p in samples[-1].points}
        point = points.get((filled.entity_type, filled.entity))
        return point if point is not None and value(point.values, "depth") == DEPTH else None

    point = await poll(check)
    return point, samples[-1] if samples else None


def test_every_registered_kind_can_fill_an_entity():
    assert sorted(FILLED) == sorted(KINDS)


class TestMetrics:
    def test_every_kind_has_the_capability(self, kind: BrokerKind, metrics: Metrics):
        assert kind.metrics is metrics
        assert metrics.entity_types
        assert set(metrics.entity_types) <= {"queue", "topic", "group"}

    async def test_a_full_sample_reports_an_entity_with_its_depth(
        self, kind_config, metrics, broker, filled
    ):
        sampler = metrics.sampler(kind_config, SamplerOptions())
        try:
            point, sample = await point_at_depth(sampler, broker, filled)
        finally:
            sampler.close()
        assert point is not None, f"{filled.entity} never reported at depth {DEPTH}"
        assert filled.entity_type in metrics.entity_types
        assert len(point.values) == len(FIELDS)
        assert sample is not None
        assert (sample.slug, sample.kind) == (kind_config.slug, kind_config.kind)
        assert len(sample.totals) == len(FIELDS)
        assert sample.consumers is not None
        assert {p.entity_type for p in sample.points} <= set(metrics.entity_types)

    async def test_a_watched_entity_is_sampled_on_its_own(
        self, kind_config, metrics, broker, filled
    ):
        sampler = metrics.sampler(kind_config, SamplerOptions())
        assert filled.entity_type in sampler.watchable
        wanted = {(filled.entity_type, filled.entity)}

        async def check() -> Point | None:
            points = await sampler.watched(broker, wanted)
            assert {(p.entity_type, p.entity) for p in points} <= wanted
            found = [p for p in points if value(p.values, "depth") == DEPTH]
            return found[0] if found else None

        try:
            await sampler.full(broker)  # what the watch loop may rely on (a topic's partitions)
            point = await poll(check)
        finally:
            sampler.close()
        assert point is not None, f"watched {filled.entity} never reported at depth {DEPTH}"

    async def test_a_managed_dlq_is_marked_whatever_its_name(
        self, kind_config, metrics, broker, filled
    ):
        sampler = metrics.sampler(kind_config, SamplerOptions())
        sampler.managed_dlqs = {filled.entity}
        try:
            point, _ = await point_at_depth(sampler, broker, filled)
        finally:
            sampler.close()
        assert point is not None and point.extra is not None
        assert point.extra["dlq"] is True

    async def test_options_of_other_kinds_are_ignored(self, kind_config, metrics, broker, filled):
        sampler = metrics.sampler(kind_config, filled.foreign)
        try:
            point, _ = await point_at_depth(sampler, broker, filled)
        finally:
            sampler.close()
        assert point is not None, "an option of another kind changed what was sampled"

    async def test_the_sampler_closes_cleanly(self, kind_config, metrics, broker):
        sampler = metrics.sampler(kind_config, SamplerOptions())
        await sampler.full(broker)
        sampler.close()
        sampler.close()  # closing twice is harmless
        await broker.ping()  # the adapter is the caller's, and still open
