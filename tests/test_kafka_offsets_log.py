"""Committed offsets from following ``__consumer_offsets``, against the real Kafka.

The log's reader must agree with OffsetFetch through commits, updates, a deleted
topic, a deleted group and transactions (aborted and committed), and a sample
must see a commit the broker acknowledged just before it began.
"""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from brokers.kafka import KafkaBroker
from brokers.kafka import offsets_log as offsets_log_module
from brokers.kafka.metrics import sample_cluster
from brokers.kafka.offsets_log import OffsetsLog, UnknownRecord, committed_offset, offset_key
from brokers.kafka.sampler import KafkaSampler
from dashboard.metrics.fields import as_dict
from tests.conftest import KAFKA
from tests.support.metrics import (
    commit,
    committed,
    create_topic,
    delete_groups,
    delete_topics,
    produce,
)

# -- the record formats (pure logic) ----------------------------------------------------


def _string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def test_an_offset_commit_key_names_group_topic_and_partition():
    for version in (0, 1):
        key = struct.pack(">h", version) + _string("grp") + _string("tópic") + struct.pack(">i", 7)
        assert offset_key(key) == ("grp", "tópic", 7)
    # Group metadata (2) and the new consumer-group protocol's records (3+) carry no offsets.
    assert offset_key(struct.pack(">h", 2) + _string("grp")) is None
    assert offset_key(struct.pack(">h", 5) + b"\x00" * 20) is None
    assert offset_key(None) is None
    with pytest.raises(UnknownRecord):
        offset_key(struct.pack(">h", 1) + struct.pack(">h", 40) + b"short")


def test_the_offset_is_read_from_every_known_value_version_and_an_unknown_one_stops_the_log():
    tail = {
        0: _string("meta") + struct.pack(">q", 1),
        1: _string("meta") + struct.pack(">qq", 1, 2),
        2: _string("meta") + struct.pack(">q", 1),
        3: struct.pack(">i", 4) + _string("meta") + struct.pack(">q", 1),
        4: struct.pack(">i", 4) + b"\x05meta" + struct.pack(">q", 1) + b"\x00",
    }
    for version, rest in tail.items():
        assert committed_offset(struct.pack(">hq", version, 123_456_789_012) + rest) == (
            123_456_789_012
        )
    with pytest.raises(UnknownRecord):
        committed_offset(struct.pack(">hq", 9, 1))
    with pytest.raises(UnknownRecord):
        committed_offset(b"\x00\x03")


# -- against the broker ---------------------------------------------------------------------


@pytest.fixture
def offsets_log() -> Iterator[OffsetsLog]:
    reader = OffsetsLog({"bootstrap.servers": KAFKA}, name="test")
    deadline = time.monotonic() + 60
    while not reader.ready and not reader.failed and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.ready and not reader.failed, reader.failed or "the log was not read in 60 s"
    yield reader
    reader.close()


@pytest.fixture
async def broker(kafka_config):
    adapter = KafkaBroker(kafka_config)
    await adapter.connect()
    yield adapter
    await adapter.close()


async def _sampled(broker: KafkaBroker, reader: OffsetsLog, topic: str) -> Any:
    sample = await sample_cluster(
        broker, offsets_log=reader, topic_filter=lambda name: name == topic
    )
    assert sample.offsets_from == "log" and not sample.log_behind
    return sample


@pytest.mark.kafka
async def test_the_log_agrees_with_offsetfetch_through_commits_a_deleted_topic_and_group(
    broker, offsets_log, unique_name
):
    topic, other, group = unique_name, unique_name + "-b", unique_name + "-grp"
    create_topic(topic, partitions=2)
    create_topic(other, partitions=1)
    try:
        produce(topic, 10, partition=0)
        commit(group, {(topic, 0): 3, (topic, 1): 0, (other, 0): 0})
        sample = await _sampled(broker, offsets_log, topic)
        assert dict(sample.groups[group].committed) == {(topic, 0): 3, (topic, 1): 0}
        assert offsets_log.committed([group])[group] == {
            (topic, 0): 3,
            (topic, 1): 0,
            (other, 0): 0,
        }

        # An update, as a consumer's own commit (assign-only, no rebalance).
        consumer = Consumer(
            {"bootstrap.servers": KAFKA, "group.id": group, "enable.auto.commit": False}
        )
        try:
            consumer.commit(offsets=[TopicPartition(topic, 0, 9)], asynchronous=False)
        finally:
            consumer.close()
        sample = await _sampled(broker, offsets_log, topic)
        assert sample.groups[group].committed[(topic, 0)] == 9 == committed(group, topic, 0)

        # A deleted topic's offsets go from the group (the broker writes tombstones).
        delete_topics(other)
        deadline = time.monotonic() + 30
        while (other, 0) in offsets_log.committed([group])[group]:
            assert time.monotonic() < deadline, "the deleted topic's offset stayed"
            await asyncio.sleep(0.2)
        assert committed(group, other, 0) is None

        delete_groups(group)
        sample = await _sampled(broker, offsets_log, topic)
        assert group not in sample.groups
        assert offsets_log.committed([group]) == {group: {}}
    finally:
        delete_groups(group)
        delete_topics(topic, other)


@pytest.mark.kafka
async def test_offsets_committed_in_an_aborted_transaction_never_count(
    broker, offsets_log, unique_name
):
    topic, group = unique_name, unique_name + "-grp"
    create_topic(topic, partitions=1)
    producer = Producer({"bootstrap.servers": KAFKA, "transactional.id": unique_name + "-tx"})
    consumer = Consumer(
        {"bootstrap.servers": KAFKA, "group.id": group, "enable.auto.commit": False}
    )
    try:
        produce(topic, 20, partition=0)
        commit(group, {(topic, 0): 2})
        producer.init_transactions(15)

        def offsets_in_transaction(offset: int, *, keep: bool) -> None:
            producer.begin_transaction()
            producer.send_offsets_to_transaction(
                [TopicPartition(topic, 0, offset)], consumer.consumer_group_metadata(), 15
            )
            if keep:
                producer.commit_transaction(15)
            else:
                producer.abort_transaction(15)

        await asyncio.to_thread(offsets_in_transaction, 11, keep=False)
        sample = await _sampled(broker, offsets_log, topic)
        assert sample.groups[group].committed == {(topic, 0): 2} and committed(group, topic) == 2

        # The next transaction begins only once the aborted one is complete (its markers
        # written); its offsets show once its own markers are, a moment after the commit
        # returns. Until then every sample shows 2, never the aborted 11.
        await asyncio.to_thread(offsets_in_transaction, 12, keep=True)
        seen: list[int] = []
        deadline = time.monotonic() + 15
        while not seen or seen[-1] != 12:
            assert time.monotonic() < deadline, f"the committed transaction never showed: {seen}"
            sample = await _sampled(broker, offsets_log, topic)
            seen.append(sample.groups[group].committed[(topic, 0)])
        assert set(seen) <= {2, 12} and committed(group, topic) == 12
    finally:
        consumer.close()
        delete_groups(group)
        delete_topics(topic)


@pytest.mark.kafka
async def test_the_sampler_takes_offsets_from_the_log_and_sees_a_commit_made_just_before(
    broker, kafka_config, unique_name
):
    topic, group = unique_name, unique_name + "-grp"
    create_topic(topic, partitions=1)
    produce(topic, 10, partition=0)
    commit(group, {(topic, 0): 1})
    # A cluster of its own name: no reader of this process follows its log yet.
    config = replace(kafka_config, slug=unique_name)
    own = KafkaBroker(config)
    await own.connect()
    from_log = KafkaSampler(config, topics=f"^{topic}$")
    asking = KafkaSampler(kafka_config, topics=f"^{topic}$", offsets_log=False)
    try:
        first = await from_log.full(own)
        # The first sample starts the reader and asks the groups meanwhile.
        assert first.cost["offsets_from"] == "OffsetFetch"
        reader = from_log.offsets_log(own)
        assert reader is not None
        deadline = time.monotonic() + 60
        while not reader.usable:
            assert time.monotonic() < deadline and not reader.failed, reader.failed
            await asyncio.sleep(0.05)
        for offset in (4, 7):
            await asyncio.to_thread(commit, group, {(topic, 0): offset})
            logged, asked = await from_log.full(own), await asking.full(broker)
            assert logged.cost["offsets_from"] == "log"
            assert asked.cost["offsets_from"] == "OffsetFetch"
            for sample in (logged, asked):
                point = next(p for p in sample.points if p.entity == group)
                assert as_dict(point.values)["lag"] == 10 - offset
                assert (point.extra or {})["committed"] == 1
        # The log-fed sample sent a request per hundred groups described and one for the
        # log's end; the other one request per group besides. Groups listed as Empty, like
        # this one, are not described: they have no member.
        described = logged.cost["groups_described"]
        assert described < logged.cost["groups_total"]
        assert logged.cost["calls"] == 5 + -(-described // 100) + 1
        asked_described = asked.cost["groups_described"]
        assert asked.cost["calls"] == 5 + -(-asked_described // 100) + asked.cost["groups_total"]
    finally:
        from_log.close()
        asking.close()
        await own.close()
        delete_groups(group)
        delete_topics(topic)


@pytest.mark.kafka
async def test_samplers_of_one_cluster_share_a_reader_that_outlives_them_briefly(
    kafka_config, unique_name, monkeypatch
):
    config = replace(kafka_config, slug=unique_name)
    own = KafkaBroker(config)
    await own.connect()
    first, second = KafkaSampler(config), KafkaSampler(config)
    try:
        reader = first.offsets_log(own)
        assert reader is not None and second.offsets_log(own) is reader
        first.close()
        second.close()
        # The collector starting its loops again (a lease lost and taken back) keeps it.
        third = KafkaSampler(config)
        assert third.offsets_log(own) is reader
        monkeypatch.setattr(offsets_log_module, "LINGER_SECONDS", 0.05)
        third.close()
        deadline = time.monotonic() + 10
        while reader._thread.is_alive():
            assert time.monotonic() < deadline, "the unused reader kept running"
            await asyncio.sleep(0.05)
        fourth = KafkaSampler(config)
        try:
            assert fourth.offsets_log(own) is not reader
        finally:
            fourth.close()
    finally:
        first.close()
        second.close()
        await own.close()


@pytest.mark.kafka
async def test_a_group_with_members_is_described_and_one_listed_empty_is_not(
    broker, kafka_config, unique_name
):
    topic, active, idle = unique_name, unique_name + "-active", unique_name + "-idle"
    create_topic(topic, partitions=2)
    commit(idle, {(topic, 0): 0})
    consumer = Consumer(
        {"bootstrap.servers": KAFKA, "group.id": active, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    sampler = KafkaSampler(kafka_config, topics=f"^{topic}$")
    try:
        deadline = time.monotonic() + 60
        while not consumer.assignment():
            assert time.monotonic() < deadline, "the consumer never joined"
            await asyncio.to_thread(consumer.poll, 0.2)
        sample = await sampler.full(broker)
        points = {p.entity: p for p in sample.points if p.entity_type == "group"}
        described, listed_empty = points[active], points[idle]
        assert (described.extra or {})["state"] == "Stable"
        assert as_dict(described.values)["consumers"] == 1
        assert (described.extra or {})["protocol"] in ("range", "roundrobin", "cooperative-sticky")
        assert (listed_empty.extra or {})["state"] == "Empty"
        assert as_dict(listed_empty.values)["consumers"] == 0
        assert [c.source for c in sample.consumers or ()] == [active]
        assert sample.cost["groups_described"] < sample.cost["groups_total"]
    finally:
        sampler.close()
        consumer.close()
        delete_groups(active, idle)
        delete_topics(topic)
