"""Resetting a Kafka consumer group's committed offsets, with a preview first.

Targets: the earliest offset, the latest (end), the first offset at or after a
time (ListOffsets by timestamp; the end when there is none), or an explicit
offset (clamped into low..high, and the preview says so). For one topic, or one
of its partitions. Only for a group with no members (state Empty or Dead): an
active group is refused with :class:`GroupNotEmpty`, and the broker refuses too
if a member joins between the check and the write (AlterConsumerGroupOffsets).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from brokers.base import BrokerError, NotFound
from brokers.kafka import KafkaBroker, Partition
from brokers.kafka.errors import GroupNotEmpty
from brokers.kafka.group_models import OffsetChange, OffsetResetPlan
from brokers.kafka.groups import committed_offsets, describe_group, offset_futures, state_name
from brokers.kafka.topics import topic_partitions

RESET_TARGETS = ("earliest", "latest", "timestamp", "offset")


async def _no_offsets() -> dict[Partition, int]:
    return {}


async def reset_offsets(
    broker: KafkaBroker,
    group_id: str,
    *,
    topic: str,
    partition: int | None,
    to: str,
    timestamp_ms: int | None = None,
    offset: int | None = None,
    apply: bool = False,
) -> OffsetResetPlan:
    """The new offsets per partition (a preview); with ``apply`` also written to the group."""
    if to not in RESET_TARGETS:
        raise ValueError(f"reset target must be one of {', '.join(RESET_TARGETS)}")
    info = await describe_group(broker, group_id)
    state = state_name(info.state)
    if info.members or state not in ("Empty", "Dead"):
        raise GroupNotEmpty(
            f"consumer group {group_id!r} is {state} with {len(info.members)} active member(s);"
            " offsets can only be reset when no consumer is running in it"
        )
    partitions = await topic_partitions(broker, topic)
    if partition is not None:
        if partition not in partitions:
            raise NotFound(f"topic {topic!r} has no partition {partition}")
        partitions = [partition]
    wanted = [(topic, p) for p in partitions]
    request: dict[str, list[TopicPartition] | None] = {
        group_id: [TopicPartition(topic, p) for p in partitions]
    }
    spec = OffsetSpec.for_timestamp(timestamp_ms or 0) if to == "timestamp" else None
    (low, high), offsets, at_time = await asyncio.gather(
        broker.watermarks(wanted),
        broker.gather(offset_futures(broker, request), "OffsetFetch", group=True),
        broker.offsets(wanted, spec) if spec is not None else _no_offsets(),
    )
    current = committed_offsets(offsets[group_id])
    changes = []
    for tp in wanted:
        lo, hi = low.get(tp), high.get(tp)
        if lo is None or hi is None:
            raise BrokerError(f"could not read the offsets of {tp[0]} partition {tp[1]}")
        note = ""
        if to == "earliest":
            new = lo
        elif to == "latest":
            new = hi
        elif to == "timestamp":
            new = at_time.get(tp, -1)
            if new < 0:
                new, note = hi, "no record at or after this time: set to the end"
        else:
            new = int(offset if offset is not None else lo)
            if new < lo or new > hi:
                new, note = min(max(new, lo), hi), f"{offset} is outside {lo}..{hi}: clamped"
        changes.append(OffsetChange(tp[0], tp[1], current.get(tp), new, lo, hi, note))
    plan = OffsetResetPlan(group_id, state, tuple(changes), False, datetime.now(UTC))
    if not apply:
        return plan
    request_alter = [
        ConsumerGroupTopicPartitions(
            group_id, [TopicPartition(c.topic, c.partition, c.new) for c in changes]
        )
    ]
    futures = broker.admin.alter_consumer_group_offsets(
        request_alter, request_timeout=broker.group_request_timeout
    )
    written = await broker.result(
        futures[group_id], f"resetting offsets of {group_id!r}", group=True
    )
    failed = [tp for tp in written.topic_partitions if tp.error]
    if failed:
        first = failed[0]
        raise BrokerError(
            f"the broker refused the new offset of {first.topic} partition {first.partition}:"
            f" {first.error.str()}"
        )
    return replace(plan, applied=True, checked_at=datetime.now(UTC))
