"""Kafka sampling against the real broker: rates, lag, lag in seconds from record times."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from brokers.kafka import KafkaBroker
from brokers.kafka import adapter as kafka_adapter
from brokers.kafka import sampler as kafka_sampler
from brokers.kafka.sampler import KafkaSampler
from dashboard.metrics.fields import as_dict, time_to_drain
from tests.support.metrics import (
    commit,
    committed,
    create_topic,
    delete_groups,
    delete_topics,
    kafka_admin,
    produce,
)

pytestmark = pytest.mark.kafka


@pytest.fixture
async def broker(kafka_config):
    adapter = KafkaBroker(kafka_config)
    await adapter.connect()
    yield adapter
    await adapter.close()


@pytest.fixture
def lagging(unique_name):
    """A topic whose group is 6 records behind on partition 0 (written 10 min ago)."""
    topic, group = unique_name, unique_name + "-grp"
    create_topic(topic, partitions=2)
    old = int((time.time() - 600) * 1000)
    produce(topic, 10, timestamp_ms=old, partition=0)
    produce(topic, 5, partition=1)
    commit(group, {(topic, 0): 4, (topic, 1): 5})
    yield topic, group
    delete_groups(group)
    delete_topics(topic)


def points_of(sample: Any) -> dict[tuple[str, str], Any]:
    points = sample if isinstance(sample, list) else sample.points
    return {(p.entity_type, p.entity): p for p in points}


async def test_lag_in_seconds_comes_from_the_record_at_the_committed_offset(
    broker, kafka_config, lagging
):
    topic, group = lagging
    sampler = KafkaSampler(kafka_config)
    try:
        sample = await sampler.full(broker)
    finally:
        sampler.close()
    points = points_of(sample)
    values: dict[str, Any] = as_dict(points[("group", group)].values)
    assert values["lag"] == 6
    assert 570 <= values["lag_seconds"] <= 700, values
    assert points[("group", group)].extra["lag_seconds_source"] == "timestamp"
    assert as_dict(points[("topic", topic)].values)["depth"] == 15
    # The probe read records without committing, and never joined a group.
    assert committed(group, topic, 0) == 4
    groups = kafka_admin().list_consumer_groups(request_timeout=10).result().valid
    assert not [g for g in groups if g.group_id.startswith("mqboard-lag-probe")]


async def test_rates_come_from_offsets_growing_between_samples(broker, kafka_config, lagging):
    topic, group = lagging
    sampler = KafkaSampler(kafka_config, window=1.0)
    try:
        await sampler.full(broker)
        await asyncio.to_thread(produce, topic, 20, partition=1)
        await asyncio.to_thread(commit, group, {(topic, 0): 10, (topic, 1): 25})
        await asyncio.sleep(1.0)
        sample = await sampler.full(broker)
    finally:
        sampler.close()
    points = points_of(sample)
    topic_values: dict[str, Any] = as_dict(points[("topic", topic)].values)
    group_values: dict[str, Any] = as_dict(points[("group", group)].values)
    assert topic_values["publish_rate"] > 0
    assert group_values["deliver_rate"] > 0 and group_values["publish_rate"] > 0
    assert group_values["lag"] == 0
    assert time_to_drain("group", points[("group", group)].values) == 0.0


async def test_without_record_times_lag_seconds_is_a_stated_estimate(broker, kafka_config, lagging):
    topic, group = lagging
    sampler = KafkaSampler(kafka_config, probe_limit=0, window=1.0)
    try:
        first = points_of(await sampler.full(broker))[("group", group)]
        assert as_dict(first.values)["lag_seconds"] is None, "no rate yet: unknown, not 0"
        await asyncio.to_thread(produce, topic, 30, partition=0)
        await asyncio.sleep(1.0)
        second = points_of(await sampler.full(broker))[("group", group)]
    finally:
        sampler.close()
    values: dict[str, Any] = as_dict(second.values)
    assert values["lag"] == 36
    assert second.extra["lag_seconds_source"] == "estimate"
    assert values["lag_seconds"] == pytest.approx(36 / values["publish_rate"], abs=0.06)


async def test_watched_topics_and_groups_are_sampled_on_their_own(broker, kafka_config, lagging):
    topic, group = lagging
    sampler = KafkaSampler(kafka_config)
    try:
        await sampler.full(broker)
        points = points_of(await sampler.watched(broker, {("topic", topic), ("group", group)}))
    finally:
        sampler.close()
    assert set(points) == {("topic", topic), ("group", group)}
    assert as_dict(points[("group", group)].values)["lag"] == 6
    assert as_dict(points[("topic", topic)].values)["depth"] == 15


@pytest.fixture
def five_groups(unique_name):
    """Five groups on one topic of 4 records, committed at offsets 0..4 (lag 4..0)."""
    topic = unique_name
    create_topic(topic, partitions=2)
    produce(topic, 4, partition=0)
    groups = [f"{unique_name}-g{i}" for i in range(5)]
    for i, group in enumerate(groups):
        commit(group, {(topic, 0): i})
    yield topic, groups
    delete_groups(*groups)
    delete_topics(topic)


async def test_many_groups_are_read_over_clients_of_its_own_with_the_same_result(
    broker, kafka_config, five_groups, monkeypatch
):
    topic, groups = five_groups
    monkeypatch.setattr(kafka_sampler, "GROUPS_PER_CLIENT", 2)
    # Offsets by OffsetFetch, a request per group: the case that needs more clients.
    alone = KafkaSampler(kafka_config, group_clients=1, topics=f"^{topic}$", offsets_log=False)
    shared = KafkaSampler(kafka_config, group_clients=3, topics=f"^{topic}$", offsets_log=False)
    try:
        one, many = await alone.full(broker), await shared.full(broker)
        assert alone.more_admins(broker, 5) == []
        helpers = shared.more_admins(broker, 5)
        assert len(helpers) == 2
        assert shared.more_admins(broker, 2) == []
        assert shared.more_admins(broker, 5) == helpers
    finally:
        alone.close()
        shared.close()

    def read(sample: Any) -> dict[str, tuple[Any, ...]]:
        return {
            p.entity: (
                as_dict(p.values)["lag"],
                p.extra["state"],
                p.extra["committed"],
                p.extra.get("error", ""),
            )
            for p in sample.points
            if p.entity_type == "group" and p.entity in groups
        }

    expected = {g: (4 - i, "Empty", 1, "") for i, g in enumerate(groups)}
    assert read(one) == read(many) == expected


async def test_watermarks_of_more_partitions_than_one_call_takes_are_all_read(
    broker, unique_name, monkeypatch
):
    topic = unique_name
    create_topic(topic, partitions=5)
    try:
        for p in range(5):
            produce(topic, p + 1, partition=p)
        monkeypatch.setattr(kafka_adapter, "OFFSETS_BATCH", 2)
        wanted = [(topic, p) for p in range(5)]
        low, high = await broker.watermarks([*wanted, (topic, 0)])
        assert low == {(topic, p): 0 for p in range(5)}
        assert high == {(topic, p): p + 1 for p in range(5)}
        # A partition that does not exist is left out; the others still answer.
        latest = OffsetSpec.latest()
        assert await broker.offsets([(topic, 4), (topic, 9)], latest) == {(topic, 4): 5}
    finally:
        delete_topics(topic)


async def test_the_lag_probe_keeps_what_it_has_when_asked_more_than_its_cache_holds():
    """Pure logic (the reads are stubbed): asking 5 offsets of a 3-entry cache reads 3 and
    keeps them; asking again reads nothing (no endless evict-and-read); offsets no longer
    asked make room for new ones."""
    from brokers.kafka.metrics import LagProbe

    asked: list[list[Any]] = []

    class Calls:
        async def blocking(self, call: Any, **_: Any) -> Any:
            return call()

    probe = LagProbe(Calls(), cache_size=3)  # type: ignore[arg-type]

    def read(wanted: list[Any], seconds: float) -> dict[Any, float]:
        asked.append(list(wanted))
        return {key: float(key[2]) for key in wanted}

    probe._read = read  # type: ignore[method-assign,assignment]
    offsets = [("t", 0, n) for n in range(5)]
    first = await probe.timestamps(offsets, limit=10, seconds=1)
    assert asked == [offsets[:3]] and first == {k: float(k[2]) for k in offsets[:3]}
    again = await probe.timestamps(offsets, limit=10, seconds=1)
    assert len(asked) == 1 and again == first
    # Two of the cached offsets are no longer asked: two new ones are read in their place.
    later = [offsets[0], ("t", 1, 7), ("t", 1, 8), ("t", 1, 9)]
    answered = await probe.timestamps(later, limit=10, seconds=1)
    assert asked[1] == [("t", 1, 7), ("t", 1, 8)]
    assert set(answered) == {offsets[0], ("t", 1, 7), ("t", 1, 8)}


async def test_cleanup_policies_are_read_for_new_topics_at_once_and_again_in_turn(
    kafka_config, monkeypatch
):
    """Pure logic (the DescribeConfigs call is stubbed): a new topic's policy at once; the
    known ones again at about one round per POLICY_SECONDS, at most POLICY_REREADS a
    sample, in turn; a topic that went is forgotten."""
    asked: list[list[str]] = []

    async def policies(_broker: Any, topics: list[str]) -> dict[str, str]:
        asked.append(list(topics))
        return {t: "delete" for t in topics}

    monkeypatch.setattr(kafka_sampler, "cleanup_policies", policies)
    monkeypatch.setattr(kafka_sampler, "POLICY_REREADS", 3)
    sampler = KafkaSampler(kafka_config)
    topics = [f"t{n}" for n in range(5)]
    await sampler._read_policies(None, topics)  # type: ignore[arg-type]
    assert asked == [topics]
    # A minute later: every known topic is due, three of them are read; then the other two.
    for expected in (["t0", "t1", "t2"], ["t3", "t4", "t0"]):
        sampler._policies_at -= kafka_sampler.POLICY_SECONDS
        await sampler._read_policies(None, topics)  # type: ignore[arg-type]
        assert asked[-1] == expected
    # The rest of that round owed, then nothing until more time has passed.
    await sampler._read_policies(None, topics)  # type: ignore[arg-type]
    assert asked[-1] == ["t1", "t2"]
    calls = len(asked)
    await sampler._read_policies(None, topics)  # type: ignore[arg-type]
    assert len(asked) == calls
    # A new topic at once; a topic that went is forgotten.
    await sampler._read_policies(None, [*topics[1:], "t9"])  # type: ignore[arg-type]
    assert asked[-1] == ["t9"]
    assert set(sampler.policies) == {"t1", "t2", "t3", "t4", "t9"}
