"""Kafka sampling for the metrics collector, through the adapter's AdminClient.

Features: every topic's low and high watermarks (one batched ListOffsets call
per side) and replication (from the same metadata); every consumer group's
state, type, assignor, members (member id, client id, host, assigned topics)
and committed offsets (DescribeGroups batched, one
OffsetFetch per group, all in flight at once, spread over the adapter's
AdminClient and, for thousands of groups, a few more: one librdkafka client
answers about a thousand group calls a second, and 10,000 groups must be read
within a 5 s interval); the same for a few topics or
groups someone is watching; and :class:`LagProbe`, which reads the timestamp
of the record at a committed offset, the basis of lag in seconds.

Settings: the adapter's ``bootstrap_servers``, ``client_options`` and
``timeout`` (every call has it); ``max_groups`` (groups read per sample,
by group id order); the probe's per-sample ``limit`` and ``seconds``.

Limitations: internal topics (``__consumer_offsets``...) are left out. A
group past ``max_groups`` is not sampled (the sample says how many exist).
The probe uses one assign-only consumer that never joins a group and never
commits (``enable.auto.commit`` off, ``assign()`` not ``subscribe()``); it
reads the first record at or after each offset, so on a compacted topic or
after retention deleted the record it reports the next surviving one. Record
timestamps are the producer's (CreateTime) unless the topic uses
LogAppendTime; a record without a timestamp gives ``None``.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from confluent_kafka import (
    TIMESTAMP_NOT_AVAILABLE,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from brokers.base import BrokerError
from brokers.kafka import KafkaBroker, Partition, bulk
from brokers.kafka.offsets_log import TOPIC as LOG_TOPIC
from brokers.kafka.offsets_log import OffsetsLog

log = logging.getLogger(__name__)

DESCRIBE_BATCH = 100
PROBE_CONF: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    "enable.partition.eof": True,
    # A committed offset below the log start reads the oldest record kept.
    "auto.offset.reset": "earliest",
    "fetch.wait.max.ms": 10,
    # One record per partition is all we need; don't prefetch thousands.
    "queued.min.messages": 1,
    "max.partition.fetch.bytes": 16 * 1024,
    "fetch.max.bytes": 1024 * 1024,
}

Offset = tuple[str, int, int]
"""(topic, partition, offset)"""


@dataclass(frozen=True)
class KafkaMember:
    member_id: str
    client_id: str
    host: str
    topics: tuple[str, ...]
    partitions: int


@dataclass(frozen=True)
class GroupOffsets:
    """A consumer group at one sample; ``error`` says what could not be read."""

    group_id: str
    state: str
    members: tuple[KafkaMember, ...]
    committed: Mapping[Partition, int]
    error: str = ""
    type: str = ""
    protocol: str = ""

    @functools.cached_property
    def topics(self) -> tuple[str, ...]:
        """Topics assigned to a member or with a committed offset."""
        assigned = {t for m in self.members for t in m.topics}
        return tuple(sorted(assigned | {t for t, _ in self.committed}))


@dataclass(frozen=True)
class KafkaSample:
    """Watermarks of every partition and every group's offsets, and what it cost."""

    partitions: Mapping[str, tuple[int, ...]]
    low: Mapping[Partition, int]
    high: Mapping[Partition, int]
    groups: Mapping[str, GroupOffsets]
    groups_total: int
    seconds: float
    calls: int = 0
    errors: tuple[str, ...] = field(default=())
    health: Mapping[str, TopicHealth] = field(default_factory=dict)
    offsets_from: str = "OffsetFetch"
    """where the committed offsets came from: ``log`` or ``OffsetFetch``"""
    log_behind: bool = False
    """the offsets log's reader had not reached the log's end when the offsets were taken"""
    described: int = 0
    """groups described (DescribeGroups): the others were listed without members"""
    phases: Mapping[str, float] = field(default_factory=dict)
    """seconds from the sample's start until each part was in (metadata, groups, ...)"""


def state_name(state: Any) -> str:
    """``PREPARING_REBALANCING`` -> ``PreparingRebalance``, as Kafka spells states."""
    return _spelled(str(getattr(state, "name", state)))


@functools.lru_cache(maxsize=64)
def _spelled(name: str) -> str:
    return "".join(w.capitalize() for w in name.replace("REBALANCING", "REBALANCE").split("_"))


class TopicHealth(NamedTuple):
    """A topic's replication as metadata describes it (for the topics list)."""

    replication_factor: int
    under_replicated: int
    offline: int


def topic_health(metadata: Any, names: Iterable[str]) -> dict[str, TopicHealth]:
    found: dict[str, TopicHealth] = {}
    for name in names:
        parts = metadata.topics[name].partitions.values()
        found[name] = TopicHealth(
            max((len(p.replicas) for p in parts), default=0),
            sum(1 for p in parts if len(p.isrs) < len(p.replicas)),
            sum(1 for p in parts if p.leader < 0),
        )
    return found


def topic_partitions(metadata: Any) -> dict[str, tuple[int, ...]]:
    return {
        name: tuple(sorted(t.partitions))
        for name, t in metadata.topics.items()
        if not name.startswith("__") and t.error is None
    }


async def _latest_and_earliest(
    broker: KafkaBroker, partitions: list[Partition], with_low: bool
) -> tuple[dict[Partition, int], dict[Partition, int]]:
    if not with_low:
        return {}, await broker.offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
    return await broker.watermarks(partitions)


class Listed(NamedTuple):
    """A group as ListGroups names it: its state and type (``""`` when the broker does not say)."""

    state: str
    type: str


MEMBERLESS = frozenset({"Empty", "Dead"})
"""States in which a group has no member: nothing for DescribeGroups to tell."""


async def group_ids(broker: KafkaBroker) -> list[str]:
    return list(await group_listing(broker))


async def group_listing(broker: KafkaBroker) -> dict[str, Listed]:
    """Every group id (sorted) with the state and type ListGroups gives."""
    listing = await broker.result(
        broker.admin.list_consumer_groups(request_timeout=broker.config.timeout),
        "ListGroups request",
    )
    found: dict[str, Listed] = {}
    for g in sorted(listing.valid, key=lambda g: g.group_id):
        state = state_name(g.state) if g.state is not None else ""
        found[g.group_id] = Listed(
            "" if state == "Unknown" else state, type_name(g.type) if g.type is not None else ""
        )
    return found


async def read_groups(
    broker: KafkaBroker,
    ids: list[str],
    more_admins: Sequence[AdminClient] = (),
    *,
    committed: Mapping[str, Mapping[Partition, int]] | None = None,
    listed: Mapping[str, Listed] | None = None,
) -> dict[str, GroupOffsets]:
    """Members and committed offsets of ``ids``; a group whose call failed says so.

    The calls are spread round-robin over the adapter's AdminClient and ``more_admins``.
    ``committed``: every group's offsets, already known (from the offsets log): then
    only DescribeGroups is sent. ``listed``: what ListGroups said of each group; one
    it lists as Empty or Dead has no member, and is not described.
    """
    if not ids:
        return {}
    timeout = broker.group_request_timeout
    admins = [broker.admin, *more_admins]
    listed = listed or {}
    memberless = {
        gid: listed[gid] for gid in ids if gid in listed and listed[gid].state in MEMBERLESS
    }
    described_ids = [gid for gid in ids if gid not in memberless] if memberless else ids
    batches = [
        described_ids[start : start + DESCRIBE_BATCH]
        for start in range(0, len(described_ids), DESCRIBE_BATCH)
    ]
    describe = {
        n: bulk.describe_groups(admins[n % len(admins)], batch, timeout)
        for n, batch in enumerate(batches)
    }
    fetch = (
        {}
        if committed is not None
        else {
            gid: bulk.group_offsets(admins[n % len(admins)], gid, timeout)
            for n, gid in enumerate(ids)
        }
    )
    described_batches, fetched = await asyncio.gather(
        broker.gather(describe, "DescribeGroups", group=True),
        broker.gather(fetch, "OffsetFetch", group=True),
    )
    described: dict[str, Any] = {}
    for n, batch in enumerate(batches):
        answers = _items(broker, described_batches[n], batch, "DescribeGroups")
        described.update(zip(batch, answers, strict=True))
    fetched_offsets = {
        gid: _items(broker, answer, [gid], "OffsetFetch")[0] for gid, answer in fetched.items()
    }
    groups: dict[str, GroupOffsets] = {}
    for gid in ids:
        info, answer = described.get(gid), fetched_offsets.get(gid)
        errors = [e.message for e in (info, answer) if isinstance(e, BrokerError)]
        members: tuple[KafkaMember, ...] = ()
        state, kind, protocol = "Unknown", "", ""
        if gid in memberless:
            state, kind = memberless[gid].state, memberless[gid].type or "unknown"
        elif info is not None and not isinstance(info, BrokerError):
            state = state_name(info.state)
            members = tuple(_member(m) for m in info.members)
            kind = type_name(getattr(info, "type", None))
            protocol = str(getattr(info, "partition_assignor", "") or "")
        offsets: Mapping[Partition, int] = {}
        if committed is not None:
            offsets = committed.get(gid, {})
        elif answer is not None and not isinstance(answer, BrokerError):
            offsets = {
                (tp.topic, tp.partition): int(tp.offset)
                for tp in answer.topic_partitions
                if tp.offset >= 0 and not tp.error
            }
        groups[gid] = GroupOffsets(gid, state, members, offsets, "; ".join(errors), kind, protocol)
    return groups


def _items(broker: KafkaBroker, answer: Any, keys: list[str], what: str) -> list[Any]:
    """A request's answer (a list in request order) as one result or BrokerError per key."""
    if isinstance(answer, BrokerError):
        return [answer] * len(keys)
    if not isinstance(answer, list) or len(answer) != len(keys):
        return [BrokerError(f"{what}: {len(keys)} asked, an answer of another size came")] * len(
            keys
        )
    return [broker.translate(a, what) if isinstance(a, KafkaError) else a for a in answer]


def type_name(kind: Any) -> str:
    """``ConsumerGroupType.CLASSIC`` -> ``"classic"``; nothing known: ``"unknown"``."""
    return str(getattr(kind, "name", kind or "unknown")).lower()


def _member(m: Any) -> KafkaMember:
    assigned = m.assignment.topic_partitions if m.assignment is not None else []
    return KafkaMember(
        member_id=str(m.member_id),
        client_id=str(m.client_id or ""),
        host=str(m.host or "").lstrip("/"),
        topics=tuple(sorted({tp.topic for tp in assigned})),
        partitions=len(assigned),
    )


def only_topics(
    groups: dict[str, GroupOffsets], wanted: Callable[[str], bool]
) -> dict[str, GroupOffsets]:
    """The groups that read a wanted topic, with only those topics' offsets and members."""
    kept: dict[str, GroupOffsets] = {}
    for gid, g in groups.items():
        topics = g.topics
        if topics and all(wanted(t) for t in topics):
            kept[gid] = g  # every topic wanted: the group as it is
            continue
        committed = {tp: o for tp, o in g.committed.items() if wanted(tp[0])}
        members = tuple(m for m in g.members if any(wanted(t) for t in m.topics))
        if committed or members:
            kept[gid] = GroupOffsets(gid, g.state, members, committed, g.error, g.type, g.protocol)
    return kept


async def sample_cluster(
    broker: KafkaBroker,
    *,
    max_groups: int = 20000,
    with_low: bool = True,
    topic_filter: Callable[[str], bool] | None = None,
    more_admins: Callable[[int], Sequence[AdminClient]] | None = None,
    offsets_log: OffsetsLog | None = None,
) -> KafkaSample:
    """Every topic's watermarks and the first ``max_groups`` groups' offsets, concurrently.

    ``topic_filter`` keeps only the topics it accepts, and the groups reading them.
    ``more_admins(n)`` gives the AdminClients that share the calls for ``n`` group
    requests with the adapter's own. ``offsets_log``, once it has read the log to
    its end, gives the committed offsets in place of an OffsetFetch per group.
    """
    started = time.monotonic()
    use_log = offsets_log is not None and offsets_log.usable
    metadata_task = asyncio.ensure_future(broker.metadata())
    ids_task = asyncio.ensure_future(group_listing(broker))
    log_ends_task = asyncio.ensure_future(_log_ends(broker, offsets_log if use_log else None))
    try:
        metadata = await metadata_task
    except BaseException:
        ids_task.cancel()
        log_ends_task.cancel()
        raise
    seconds = {"metadata": time.monotonic() - started}
    partitions = topic_partitions(metadata)
    if topic_filter is not None:
        partitions = {t: parts for t, parts in partitions.items() if topic_filter(t)}
    wanted = [(t, p) for t, parts in partitions.items() for p in parts]
    offsets_task = asyncio.ensure_future(_latest_and_earliest(broker, wanted, with_low))
    behind = False
    try:
        listing = await ids_task
        ids = list(listing)
        read = ids[: max(0, max_groups)]
        committed = None
        if use_log and offsets_log is not None:
            ends = await log_ends_task
            behind = len(ends) < len(offsets_log.partitions)
            behind = not await _caught_up(offsets_log, ends, LOG_WAIT_SECONDS) or behind
            committed = offsets_log.committed(read)
            seconds["offsets_log"] = time.monotonic() - started
        described = sum(1 for g in read if listing[g].state not in MEMBERLESS)
        requests = described // DESCRIBE_BATCH if committed is not None else len(read)
        helpers = more_admins(requests) if more_admins is not None else ()
        groups = await read_groups(broker, read, helpers, committed=committed, listed=listing)
        if topic_filter is not None:
            groups = only_topics(groups, topic_filter)
        seconds["groups"] = time.monotonic() - started
        low, high = await offsets_task
        seconds["watermarks"] = time.monotonic() - started
    except BaseException:
        offsets_task.cancel()
        log_ends_task.cancel()
        raise
    errors = tuple(f"{g.group_id}: {g.error}" for g in groups.values() if g.error)
    describes = -(-described // DESCRIBE_BATCH)
    return KafkaSample(
        partitions=partitions,
        low=low,
        high=high,
        groups=groups,
        groups_total=len(ids),
        seconds=time.monotonic() - started,
        calls=3 + (2 if with_low else 1) + describes + (1 if use_log else len(read)),
        errors=errors,
        health=topic_health(metadata, partitions),
        offsets_from="log" if use_log else "OffsetFetch",
        log_behind=behind,
        described=described,
        phases={k: round(v, 3) for k, v in seconds.items()},
    )


LOG_WAIT_SECONDS = 2.0
"""how long a sample waits for the offsets log's reader to reach the log's end"""


async def _log_ends(broker: KafkaBroker, offsets_log: OffsetsLog | None) -> dict[int, int]:
    """The last stable offset of each partition of the offsets log (none: nothing to wait for)."""
    if offsets_log is None:
        return {}
    ends = await broker.offsets(
        [(LOG_TOPIC, p) for p in offsets_log.partitions],
        OffsetSpec.latest(),  # type: ignore[no-untyped-call]
        read_committed=True,
    )
    return {p: offset for (_, p), offset in ends.items()}


async def _caught_up(offsets_log: OffsetsLog, ends: Mapping[int, int], seconds: float) -> bool:
    """Wait until the reader has read the offsets log up to ``ends``, at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not offsets_log.caught_up(ends):
        if time.monotonic() >= deadline or not offsets_log.usable:
            return False
        await asyncio.sleep(0.01)
    return True


async def watermarks_of(
    broker: KafkaBroker, partitions: Mapping[str, tuple[int, ...]], *, with_low: bool = True
) -> tuple[dict[Partition, int], dict[Partition, int]]:
    """Low and high watermarks of a few topics (for topics someone watches)."""
    wanted = [(t, p) for t, parts in partitions.items() for p in parts]
    if not wanted:
        return {}, {}
    return await _latest_and_earliest(broker, wanted, with_low)


class LagProbe:
    """Timestamps of the records at given offsets, read by one assign-only consumer.

    Answers are cached by (topic, partition, offset): a stuck group's lag in
    seconds grows every sample without reading anything again. When more offsets
    are asked at once than the cache holds, it keeps the ones it has (the rest are
    left unanswered and estimated) rather than evicting offsets asked in the same
    call: evicting them would read every offset again each sample, for ever.
    """

    def __init__(self, broker: KafkaBroker, cache_size: int = 100_000) -> None:
        self._broker = broker
        self._cache: OrderedDict[Offset, float | None] = OrderedDict()
        self._cache_size = cache_size
        self._consumer: Consumer | None = None
        self._lock = threading.Lock()
        self._async_lock = asyncio.Lock()
        self.reads = 0

    async def timestamps(
        self, wanted: Iterable[Offset], *, limit: int, seconds: float
    ) -> dict[Offset, float | None]:
        """Epoch seconds of the record at (or first after) each offset; at most ``limit``
        offsets are read from the broker per call, the rest only answered from the cache."""
        found: dict[Offset, float | None] = {}
        missing: list[Offset] = []
        for key in dict.fromkeys(wanted):
            if key in self._cache:
                self._cache.move_to_end(key)
                found[key] = self._cache[key]
            elif len(missing) < limit:
                missing.append(key)
        # Offsets asked now were moved to the end; only the others may make room.
        room = self._cache_size - len(found)
        missing = missing[: max(0, room)]
        if not missing:
            return found
        async with self._async_lock:
            read = await self._broker.blocking(
                lambda: self._read(missing, seconds),
                what="reading record timestamps",
                seconds=seconds,
            )
        self.reads += len(read)
        for key, value in read.items():
            self._cache[key] = value
            found[key] = value
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return found

    def _read(self, wanted: list[Offset], seconds: float) -> dict[Offset, float | None]:
        deadline = time.monotonic() + seconds
        results: dict[Offset, float | None] = {}
        # A partition is assigned at one offset at a time: several groups at
        # different offsets of one partition take several rounds.
        rounds: dict[Partition, list[int]] = {}
        for topic, partition, offset in wanted:
            rounds.setdefault((topic, partition), []).append(offset)
        with self._lock:
            consumer = self._open()
            try:
                while rounds and time.monotonic() < deadline:
                    batch = {tp: offsets.pop(0) for tp, offsets in rounds.items()}
                    rounds = {tp: rest for tp, rest in rounds.items() if rest}
                    self._round(consumer, batch, results, deadline)
            finally:
                consumer.unassign()
        return results

    def _round(
        self,
        consumer: Consumer,
        batch: dict[Partition, int],
        results: dict[Offset, float | None],
        deadline: float,
    ) -> None:
        consumer.assign([TopicPartition(t, p, o) for (t, p), o in batch.items()])
        pending = dict(batch)
        while pending and time.monotonic() < deadline:
            timeout = max(0.01, min(0.2, deadline - time.monotonic()))
            for message in consumer.consume(num_messages=max(1, len(pending)), timeout=timeout):
                key = (message.topic(), message.partition())
                if key not in pending:
                    continue
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        results[(*key, pending.pop(key))] = None
                    continue
                offset = message.offset()
                if offset is not None and offset < pending[key]:
                    continue
                kind, millis = message.timestamp()
                value = None if kind == TIMESTAMP_NOT_AVAILABLE or millis < 0 else millis / 1000
                results[(*key, pending.pop(key))] = value
        consumer.unassign()

    def _open(self) -> Consumer:
        if self._consumer is None:
            conf = self._broker.client_config()
            conf.update(PROBE_CONF)
            # librdkafka wants a group id even for assign-only reads; this one
            # never joins and never commits.
            conf["group.id"] = f"mqboard-lag-probe-{uuid.uuid4().hex[:12]}"
            self._consumer = Consumer(conf)
        return self._consumer

    def close(self) -> None:
        with self._lock:
            consumer, self._consumer = self._consumer, None
        if consumer is not None:
            try:
                consumer.close()
            except (KafkaException, RuntimeError) as exc:
                log.debug("closing the lag probe failed: %s", exc)
