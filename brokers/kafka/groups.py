"""Kafka consumer groups: list, detail, lag, and the groups reading a topic.

Features: a page of the groups list (state, type, partition assignor, members,
topics, total lag), a group's detail (members with client id, host and
assignment; per partition the committed offset, end offset and lag) and the
groups with offsets committed on one topic. Offset resets: ``brokers.kafka.offsets``.

Cost at scale: ListGroups once; DescribeGroups in one batched call and the
committed offsets one request per group (librdkafka allows one group per
OffsetFetch call), all in flight at once; end offsets in one batched
ListOffsets call; only for the groups on the page.

Semantics: lag = end offset (high watermark) - committed offset. A group with
no committed offsets has unknown lag (``None``), never zero.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from brokers.base import BrokerError, NotFound
from brokers.kafka import KafkaBroker, Partition
from brokers.kafka.group_models import (
    GroupDetail,
    GroupMember,
    GroupPage,
    GroupPartition,
    GroupSummary,
)
from brokers.kafka.models import TopicReader, TopicReaders
from brokers.kafka.topics import topic_partitions


def state_name(state: Any) -> str:
    """``PREPARING_REBALANCING`` -> ``"PreparingRebalance"``, as Kafka spells states."""
    name = str(getattr(state, "name", state))
    words = name.replace("REBALANCING", "REBALANCE").split("_")
    return "".join(w.capitalize() for w in words)


def type_name(kind: Any) -> str:
    return str(getattr(kind, "name", kind or "unknown")).lower()


async def list_group_ids(broker: KafkaBroker) -> list[Any]:
    listing = await broker.result(
        broker.admin.list_consumer_groups(request_timeout=broker.config.timeout),
        "ListGroups request",
    )
    return sorted(listing.valid, key=lambda g: g.group_id)


def offset_futures(broker: KafkaBroker, requests: dict[str, list[TopicPartition] | None]) -> Any:
    futures = {}
    for gid, partitions in requests.items():
        request = [ConsumerGroupTopicPartitions(gid, partitions)]
        futures.update(
            broker.admin.list_consumer_group_offsets(
                request, request_timeout=broker.group_request_timeout
            )
        )
    return futures


def committed_offsets(answer: Any) -> dict[Partition, int]:
    if isinstance(answer, BrokerError):
        return {}
    return {
        (tp.topic, tp.partition): int(tp.offset)
        for tp in answer.topic_partitions
        if tp.offset >= 0 and not tp.error
    }


def _lag(committed: dict[Partition, int], high: dict[Partition, int]) -> int | None:
    if not committed or any(tp not in high for tp in committed):
        return None
    return sum(max(0, high[tp] - offset) for tp, offset in committed.items())


async def group_page(
    broker: KafkaBroker, *, page: int = 1, per_page: int = 50, name_filter: str = ""
) -> GroupPage:
    needle = name_filter.strip().casefold()
    groups = [g for g in await list_group_ids(broker) if needle in g.group_id.casefold()]
    per_page = max(1, per_page)
    page = min(max(1, page), max(1, -(-len(groups) // per_page)))
    shown = groups[(page - 1) * per_page : page * per_page]
    ids = [g.group_id for g in shown]
    describe = (
        broker.admin.describe_consumer_groups(ids, request_timeout=broker.group_request_timeout)
        if ids
        else {}
    )
    described, offsets = await asyncio.gather(
        broker.gather(describe, "DescribeGroups", group=True),
        broker.gather(offset_futures(broker, dict.fromkeys(ids)), "OffsetFetch", group=True),
    )
    committed = {gid: committed_offsets(offsets.get(gid)) for gid in ids}
    wanted = {tp for c in committed.values() for tp in c}
    high = await broker.offsets(sorted(wanted), OffsetSpec.latest())  # type: ignore[no-untyped-call]
    rows = []
    for listing in shown:
        gid = listing.group_id
        info = described.get(gid)
        ok = info is not None and not isinstance(info, BrokerError)
        members = info.members if ok else []
        assigned = {tp.topic for m in members for tp in m.assignment.topic_partitions}
        errors = [str(e) for e in (info, offsets.get(gid)) if isinstance(e, BrokerError)]
        rows.append(
            GroupSummary(
                group_id=gid,
                state=state_name(info.state if ok else listing.state),
                type=type_name(info.type if ok else listing.type),
                protocol=(info.partition_assignor or "") if ok else "",
                members=len(info.members) if ok else None,
                topics=tuple(sorted(assigned | {t for t, _ in committed[gid]})),
                committed_partitions=len(committed[gid]),
                lag=_lag(committed[gid], high),
                error="; ".join(errors),
            )
        )
    return GroupPage(
        groups=tuple(rows),
        total=len(groups),
        page=page,
        per_page=per_page,
        name_filter=name_filter,
        checked_at=datetime.now(UTC),
    )


async def describe_group(broker: KafkaBroker, group_id: str) -> Any:
    futures = broker.admin.describe_consumer_groups(
        [group_id], request_timeout=broker.group_request_timeout
    )
    return await broker.result(futures[group_id], f"consumer group {group_id!r}", group=True)


async def group_detail(broker: KafkaBroker, group_id: str) -> GroupDetail:
    info, offsets = await asyncio.gather(
        describe_group(broker, group_id),
        broker.gather(offset_futures(broker, {group_id: None}), "OffsetFetch", group=True),
    )
    answer = offsets[group_id]
    if isinstance(answer, BrokerError):
        raise answer
    committed = committed_offsets(answer)
    state = state_name(info.state)
    if state == "Dead" and not info.members and not committed:
        raise NotFound(f"no consumer group named {group_id!r} on this cluster")
    owner: dict[Partition, str] = {}
    members = []
    for m in info.members:
        assignment = tuple(sorted((tp.topic, tp.partition) for tp in m.assignment.topic_partitions))
        owner.update(dict.fromkeys(assignment, m.client_id))
        members.append(
            GroupMember(
                member_id=m.member_id,
                client_id=m.client_id,
                host=m.host,
                instance_id=m.group_instance_id,
                assignment=assignment,
            )
        )
    wanted = sorted(set(committed) | set(owner))
    high = await broker.offsets(wanted, OffsetSpec.latest())  # type: ignore[no-untyped-call]
    partitions = tuple(
        GroupPartition(
            topic=t,
            partition=p,
            committed=committed.get((t, p)),
            end=high.get((t, p)),
            lag=(
                max(0, high[(t, p)] - committed[(t, p)])
                if (t, p) in committed and (t, p) in high
                else None
            ),
            member_client_id=owner.get((t, p)),
        )
        for t, p in wanted
    )
    return GroupDetail(
        group_id=group_id,
        state=state,
        type=type_name(info.type),
        protocol=info.partition_assignor or "",
        coordinator=info.coordinator.id if info.coordinator is not None else None,
        members=tuple(members),
        partitions=partitions,
        checked_at=datetime.now(UTC),
    )


async def topic_readers(
    broker: KafkaBroker,
    topic: str,
    *,
    max_groups: int,
    candidates: Collection[str] | None = None,
    known_from: datetime | None = None,
) -> TopicReaders:
    """Groups with offsets committed on ``topic``, checking at most ``max_groups`` groups:
    any group, or only ``candidates`` that still exist (a sample taken at
    ``known_from`` saw them reading the topic)."""
    partitions = await topic_partitions(broker, topic)
    groups = await list_group_ids(broker)
    if candidates is not None:
        named = set(candidates)
        groups = [g for g in groups if g.group_id in named]
    checked = groups[: max(0, max_groups)]
    wanted = [TopicPartition(topic, p) for p in partitions]
    requests: dict[str, list[TopicPartition] | None] = {g.group_id: wanted for g in checked}
    high, offsets = await asyncio.gather(
        broker.offsets([(topic, p) for p in partitions], OffsetSpec.latest()),  # type: ignore[no-untyped-call]
        broker.gather(offset_futures(broker, requests), "OffsetFetch", group=True),
    )
    states = {g.group_id: state_name(g.state) for g in checked}
    readers = []
    for gid in sorted(offsets):
        committed = committed_offsets(offsets[gid])
        if committed:
            readers.append(
                TopicReader(
                    group_id=gid,
                    state=states.get(gid),
                    partitions=len(committed),
                    lag=_lag(committed, high),
                )
            )
    return TopicReaders(
        groups=tuple(readers),
        checked=len(checked),
        total=len(groups),
        checked_at=datetime.now(UTC),
        known_from=known_from if candidates is not None else None,
    )
