"""Sampling a Kafka cluster: topics (produce rate), groups (consume rate, lag, lag in seconds).

Lag in seconds is the age of the oldest record a group has not consumed yet:
for every partition where the group lags, the timestamp of the record at its
committed offset, read by :class:`brokers.kafka.metrics.LagProbe` (which never
commits). When those records could not be read within the probe's budget it is
estimated as lag / produce rate, and the point says which (``lag_seconds_source``
is ``timestamp`` or ``estimate``).

The metrics capability of Kafka (:class:`KafkaMetrics`): it makes a
:class:`KafkaSampler`, which turns what :mod:`brokers.kafka.metrics` reads into
the neutral points of :mod:`brokers.base.metrics`: topics (depth is the sum of
high minus low watermarks, publish rate the growth of the high watermarks) and
groups (lag, lag in seconds, consume rate). A point's ``extra`` also carries
what the topics and groups lists show (partitions, replication, cleanup policy
read once a minute; a group's type, assignor, topics and committed partitions). Of
:class:`~brokers.base.metrics.SamplerOptions` it reads ``topics``,
``max_groups``, ``group_clients``, ``offsets_log``, ``lag_probes``, ``lag_probe_seconds`` and
``rate_window``.

Thousands of groups: committed offsets come from following ``__consumer_offsets``
(:mod:`brokers.kafka.offsets_log`, one consumer), so a sample sends DescribeGroups
for a hundred groups at a time and no request per group. Until that log has been
read to its end, or when it cannot be read, each group is asked (OffsetFetch):
one AdminClient answers about a thousand group calls a second here, whatever the
broker could do, so past ``GROUPS_PER_CLIENT`` requests the sampler adds
AdminClients of its own (up to ``group_clients`` in all, each a connection to the
cluster, kept between samples) and spreads the calls over them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from confluent_kafka.admin import AdminClient

from brokers.base import Broker, BrokerError, ClusterConfig
from brokers.base.metrics import (
    ClusterSample,
    Point,
    SamplerOptions,
    SeenConsumer,
    looks_like_dlq,
    rounded,
    value,
    values_of,
)
from brokers.kafka.adapter import KafkaBroker, Partition
from brokers.kafka.calls import retire
from brokers.kafka.metrics import (
    GroupOffsets,
    LagProbe,
    TopicHealth,
    only_topics,
    read_groups,
    sample_cluster,
    watermarks_of,
)
from brokers.kafka.offsets_log import OffsetsLog
from brokers.kafka.offsets_log import acquire as acquire_log
from brokers.kafka.offsets_log import release as release_log
from brokers.kafka.rates import CounterRates
from brokers.kafka.topics import cleanup_policies

log = logging.getLogger(__name__)

POLICY_SECONDS = 60.0
"""How often every topic's cleanup policy is read again (new topics: next sample)..."""
POLICY_REREADS = 200
"""...but at most this many topics' a sample: more topics take longer to go round."""

GROUPS_PER_CLIENT = 1000
"""Groups one AdminClient reads per sample before another client shares the calls."""


def _sum_known(values: Iterable[float | int | None]) -> Any:
    known = [v for v in values if v is not None]
    return sum(known) if known else None


def _kafka(broker: Broker) -> KafkaBroker:
    if not isinstance(broker, KafkaBroker):
        raise TypeError(f"a Kafka sampler needs a Kafka adapter, not {broker!r}")
    return broker


class KafkaMetrics:
    """Kafka's metrics capability: topics and consumer groups, besides the cluster."""

    entity_types = ("topic", "group")

    def sampler(self, config: ClusterConfig, options: SamplerOptions) -> KafkaSampler:
        return KafkaSampler(
            config,
            max_groups=options.max_groups,
            group_clients=options.group_clients,
            offsets_log=options.offsets_log,
            probe_limit=options.lag_probes,
            probe_seconds=options.lag_probe_seconds,
            window=options.rate_window,
            topics=options.topics,
        )


class KafkaSampler:
    watchable = frozenset({"topic", "group"})

    def __init__(
        self,
        config: ClusterConfig,
        *,
        max_groups: int = 20000,
        group_clients: int = 4,
        offsets_log: bool = True,
        probe_limit: int = 500,
        probe_seconds: float = 2.0,
        window: float = 5.0,
        topics: str = "",
    ) -> None:
        self.config = config
        self.topic_filter: Callable[[str], bool] | None = None
        if topics:
            pattern = re.compile(topics)
            # Asked for every committed partition of every group each sample: remembered.
            self.topic_filter = functools.lru_cache(maxsize=1 << 16)(
                lambda name: pattern.search(name) is not None
            )
        self.max_groups = max_groups
        self.group_clients = max(1, group_clients)
        self._admins: list[AdminClient] = []
        self._admins_of: tuple[KafkaBroker, int] | None = None
        self.use_offsets_log = offsets_log
        self._log: tuple[KafkaBroker, OffsetsLog] | None = None
        self.probe_limit = probe_limit
        self.probe_seconds = probe_seconds
        self.rates = CounterRates(window)
        self.managed_dlqs: set[str] = set()
        # From the last full sample: what the watch loop needs and cannot cheaply read.
        self.partitions: dict[str, tuple[int, ...]] = {}
        self.topic_members: dict[str, int] = {}
        self.health: dict[str, TopicHealth] = {}
        self.policies: dict[str, str] = {}
        self._policies_at = 0.0
        self._policy_turn = 0
        self._policy_credit = 0.0
        self._probe: LagProbe | None = None

    def close(self) -> None:
        # AdminClient has no close(); dropping the last reference destroys it.
        retire(*self._admins)
        self._admins, self._admins_of = [], None
        if self._log is not None:
            release_log(self._log[1])
            self._log = None
        if self._probe is not None:
            self._probe.close()
            self._probe = None

    def probe(self, broker: KafkaBroker) -> LagProbe:
        if self._probe is None:
            self._probe = LagProbe(broker)
        return self._probe

    def offsets_log(self, broker: KafkaBroker) -> OffsetsLog | None:
        """The process's reader of ``__consumer_offsets`` for this cluster (shared)."""
        if not self.use_offsets_log:
            return None
        if self._log is None or self._log[0] is not broker:
            reader = acquire_log(broker.client_config(), name=self.config.slug)
            if self._log is not None:
                release_log(self._log[1])
            self._log = (broker, reader)
        return self._log[1]

    def more_admins(self, broker: KafkaBroker, groups: int) -> list[AdminClient]:
        """AdminClients besides the adapter's for ``groups`` group requests: one more per
        ``GROUPS_PER_CLIENT`` requests, ``group_clients`` in all at most."""
        of = (broker, broker.admin_generation)
        if (
            self._admins_of is None
            or self._admins_of[0] is not of[0]
            or self._admins_of[1] != of[1]
        ):
            # A new adapter (its configuration may differ), or one that retired its
            # client after giving up on a request: these may carry such requests too.
            retire(*self._admins)
            self._admins, self._admins_of = [], of
        wanted = min(self.group_clients, -(-groups // GROUPS_PER_CLIENT)) - 1
        while len(self._admins) < wanted:
            self._admins.append(AdminClient(broker.client_config()))
        return self._admins[: max(0, wanted)]

    async def full(self, adapter: Broker) -> ClusterSample:
        broker = _kafka(adapter)
        started = time.monotonic()
        sample = await sample_cluster(
            broker,
            max_groups=self.max_groups,
            topic_filter=self.topic_filter,
            more_admins=lambda groups: self.more_admins(broker, groups),
            offsets_log=self.offsets_log(broker),
        )
        await self._read_policies(broker, list(sample.partitions))
        now = policies_done = time.monotonic()
        self.partitions = dict(sample.partitions)
        self.health = dict(sample.health)
        members: dict[str, int] = {}
        for group in sample.groups.values():
            for m in group.members:
                for topic in m.topics:
                    members[topic] = members.get(topic, 0) + 1
        self.topic_members = members
        points = [
            self._topic_point(topic, parts, sample.low, sample.high, now)
            for topic, parts in sample.partitions.items()
        ]
        groups = await self._group_points(broker, sample.groups, sample.high, now)
        points += groups
        self.rates.forget_except(
            {("topic", t) for t in sample.partitions}
            | {(k, g) for g in sample.groups for k in ("consume", "produce")}
        )
        topics = [p.values for p in points if p.entity_type == "topic"]
        lag_seconds = [v for p in groups if (v := value(p.values, "lag_seconds")) is not None]
        totals = values_of(
            depth=_sum_known(value(v, "depth") for v in topics),
            publish_rate=rounded(_sum_known(value(v, "publish_rate") for v in topics)),
            deliver_rate=rounded(_sum_known(value(p.values, "deliver_rate") for p in groups)),
            consumers=sum(len(g.members) for g in sample.groups.values()),
            lag=_sum_known(value(p.values, "lag") for p in groups),
            lag_seconds=max(lag_seconds, default=None),
        )
        seen = tuple(
            SeenConsumer(
                "kafka",
                m.member_id,
                g.group_id,
                m.client_id,
                m.host,
                {"group": g.group_id, "topics": list(m.topics), "partitions": m.partitions},
            )
            for g in sample.groups.values()
            for m in g.members
        )
        return ClusterSample(
            slug=self.config.slug,
            kind=self.config.kind,
            time=datetime.now(UTC),
            totals=totals,
            points=tuple(points),
            consumers=seen,
            seconds=time.monotonic() - started,
            cost={
                "calls": sample.calls,
                "topics": len(sample.partitions),
                "groups": len(sample.groups),
                "groups_total": sample.groups_total,
                "groups_described": sample.described,
                "probe_reads": self._probe.reads if self._probe else 0,
                "offsets_from": sample.offsets_from,
                "offsets_log_behind": sample.log_behind,
                "phases": {
                    **sample.phases,
                    "policies": round(policies_done - started, 3),
                    "points": round(time.monotonic() - started, 3),
                },
            },
        )

    async def _read_policies(self, broker: KafkaBroker, topics: list[str]) -> None:
        """Cleanup policies change rarely: a new topic's is read at once, and the known ones
        again in turn, each about once per ``POLICY_SECONDS`` but at most
        ``POLICY_REREADS`` a sample (every config of a topic comes back with it: at 5,000
        topics, reading all of them once a minute was a quarter of the collector's time).
        """
        now = time.monotonic()
        known = [t for t in topics if t in self.policies]
        new = [t for t in topics if t not in self.policies]
        elapsed = now - self._policies_at if self._policies_at else POLICY_SECONDS
        self._policies_at = now
        # Rereads owed: a round of the known topics per POLICY_SECONDS, one round at most.
        owed = self._policy_credit + len(known) * elapsed / POLICY_SECONDS
        due = min(POLICY_REREADS, len(known), int(owed))
        self._policy_credit = min(float(len(known)), owed) - due
        again: list[str] = []
        if due and known:
            start = self._policy_turn % len(known)
            again = (known[start:] + known[:start])[:due]
            self._policy_turn = start + due
        wanted = new + again
        if not wanted:
            return
        try:
            found = await cleanup_policies(broker, wanted)
        except BrokerError as exc:
            log.info("%s: cleanup policies unavailable: %s", self.config.slug, exc)
            return
        present = set(topics)
        self.policies = {t: p for t, p in self.policies.items() if t in present}
        self.policies.update(found)

    def _topic_point(
        self,
        topic: str,
        parts: tuple[int, ...],
        low: Mapping[Partition, int],
        high: Mapping[Partition, int],
        now: float,
    ) -> Point:
        ends = {p: high[(topic, p)] for p in parts if (topic, p) in high}
        depth = None
        if len(ends) == len(parts) and all((topic, p) in low for p in parts):
            depth = sum(ends[p] - low[(topic, p)] for p in parts)
        produce = rounded(self.rates.observe(("topic", topic), now, ends))
        values = values_of(
            depth=depth, publish_rate=produce, consumers=self.topic_members.get(topic, 0)
        )
        extra: dict[str, Any] = {"partitions": len(parts)}
        health = self.health.get(topic)
        if health is not None:
            extra["rf"] = health.replication_factor
            if health.under_replicated:
                extra["under_replicated"] = health.under_replicated
            if health.offline:
                extra["offline"] = health.offline
        if topic in self.policies:
            extra["cleanup"] = self.policies[topic]
        if looks_like_dlq(topic) or topic in self.managed_dlqs:
            extra.update(dlq=True, arrival_rate=produce)
        return Point("topic", topic, values, extra)

    async def _group_points(
        self,
        broker: KafkaBroker,
        groups: Mapping[str, GroupOffsets],
        high: Mapping[Partition, int],
        now: float,
    ) -> list[Point]:
        lagging = [
            (t, p, offset)
            for g in groups.values()
            for (t, p), offset in g.committed.items()
            if high.get((t, p), offset) > offset
        ]
        stamps: dict[tuple[str, int, int], float | None] = {}
        if lagging:
            try:
                stamps = await self.probe(broker).timestamps(
                    lagging, limit=self.probe_limit, seconds=self.probe_seconds
                )
            except BrokerError as exc:
                log.info("%s: record timestamps unavailable: %s", self.config.slug, exc)
        wall = time.time()
        return [self._group_point(g, high, now, stamps, wall) for g in groups.values()]

    def _group_point(
        self,
        group: GroupOffsets,
        high: Mapping[Partition, int],
        now: float,
        stamps: Mapping[tuple[str, int, int], float | None],
        wall: float,
    ) -> Point:
        committed = group.committed
        ends = {tp: high[tp] for tp in committed if tp in high}
        lag = None
        if committed and len(ends) == len(committed):
            lag = sum(max(0, ends[tp] - offset) for tp, offset in committed.items())
        consume = rounded(self.rates.observe(("consume", group.group_id), now, committed))
        produce = rounded(self.rates.observe(("produce", group.group_id), now, ends))
        lag_seconds, source = self._lag_seconds(group, ends, lag, produce, stamps, wall)
        values = values_of(
            publish_rate=produce,
            deliver_rate=consume,
            consumers=len(group.members),
            lag=lag,
            lag_seconds=lag_seconds,
        )
        extra: dict[str, Any] = {
            "state": group.state,
            "lag_seconds_source": source,
            "type": group.type,
            "protocol": group.protocol,
            "topics": list(group.topics),
            "committed": len(committed),
        }
        if group.error:
            extra["error"] = group.error
        return Point("group", group.group_id, values, extra)

    @staticmethod
    def _lag_seconds(
        group: GroupOffsets,
        ends: Mapping[Partition, int],
        lag: int | None,
        produce: float | None,
        stamps: Mapping[tuple[str, int, int], float | None],
        wall: float,
    ) -> tuple[float | None, str | None]:
        if lag is None:
            return None, None
        if lag == 0:
            return 0.0, "timestamp"
        ages = []
        for (t, p), offset in group.committed.items():
            if ends.get((t, p), offset) <= offset:
                continue
            stamp = stamps.get((t, p, offset))
            if stamp is None:
                break
            ages.append(max(0.0, wall - stamp))
        else:
            return rounded(max(ages, default=0.0), 1), "timestamp"
        if produce:
            return rounded(lag / produce, 1), "estimate"
        return None, None

    async def watched(self, adapter: Broker, entities: Iterable[tuple[str, str]]) -> list[Point]:
        """Fresh values of the topics and groups someone is watching."""
        broker = _kafka(adapter)
        wanted = list(entities)
        topics = {e: self.partitions[e] for t, e in wanted if t == "topic" and e in self.partitions}
        group_ids = sorted({e for t, e in wanted if t == "group"})
        (low, high), groups = await asyncio.gather(
            watermarks_of(broker, topics), read_groups(broker, group_ids)
        )
        if self.topic_filter is not None:
            groups = only_topics(groups, self.topic_filter)
        now = time.monotonic()
        points = [self._topic_point(t, parts, low, high, now) for t, parts in topics.items()]
        committed_topics: dict[str, set[int]] = {}
        for g in groups.values():
            if g.state == "Dead" and not g.committed:
                continue
            for t, p in g.committed:
                committed_topics.setdefault(t, set()).add(p)
        missing = {t: tuple(sorted(ps)) for t, ps in committed_topics.items()}
        if missing:
            _, group_high = await watermarks_of(broker, missing, with_low=False)
            high = {**high, **group_high}
        live = {gid: g for gid, g in groups.items() if not (g.state == "Dead" and not g.committed)}
        return points + await self._group_points(broker, live, high, now)
