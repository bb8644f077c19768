"""Kafka cluster, topics, partitions and topic configs.

Features: the cluster page (id, controller, brokers with rack), a page of the
topics list (name filter, internal topics hidden unless asked for, partitions,
replication factor, under-replicated and offline partitions, message counts
from watermarks, cleanup policy), a topic's detail (per partition leader,
replicas, ISR, watermarks; configs, non-default first) and the consumer groups
that committed offsets on a topic are in ``brokers.kafka.groups``.

Cost: one metadata request for the list, then watermarks (two batched
ListOffsets calls) and cleanup policies (one DescribeConfigs call) only for
the page's topics, all three at once.

Limitations: "internal" means the name starts with ``__`` (metadata does not
carry the flag). Message counts are high - low watermarks: exact for
delete-only topics, an estimate on compacted ones (and including transaction
markers). Nothing here creates a topic: the detail reads metadata through
DescribeTopicPartitions, and a missing topic is :class:`NotFound`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import TopicCollection
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    ConfigResource,
    ConfigSource,
    ResourceType,
)

from brokers.base import BrokerError, Node, NotFound
from brokers.kafka import KafkaBroker
from brokers.kafka.metadata import summarize
from brokers.kafka.models import (
    ConfigValue,
    KafkaCluster,
    PartitionInfo,
    TopicDetail,
    TopicPage,
    TopicSummary,
)


def is_internal(name: str) -> bool:
    return name.startswith("__")


async def cluster_info(broker: KafkaBroker) -> KafkaCluster:
    summary = await broker.read_metadata(summarize)
    future = broker.admin.describe_cluster(request_timeout=broker.config.timeout)
    described, version = await asyncio.gather(
        broker.result(future, "DescribeCluster request"), broker.version(summary.brokers)
    )
    controller = described.controller.id if described.controller is not None else None
    brokers = tuple(
        Node(
            name=str(n.id),
            host=n.host,
            port=n.port,
            rack=n.rack or None,
            is_controller=n.id == controller,
        )
        for n in sorted(described.nodes, key=lambda n: n.id)
    )
    visible = [name for name in summary.partitions if not is_internal(name)]
    return KafkaCluster(
        cluster_id=described.cluster_id,
        controller_id=controller,
        brokers=brokers,
        topics=len(visible),
        partitions=sum(len(summary.partitions[name]) for name in visible),
        version=version,
        checked_at=datetime.now(UTC),
    )


async def cleanup_policies(broker: KafkaBroker, topics: list[str]) -> dict[str, str]:
    """``cleanup.policy`` of each topic, in one DescribeConfigs call; failures left out."""
    if not topics:
        return {}
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in topics]
    futures = broker.admin.describe_configs(resources, request_timeout=broker.config.timeout)
    answers = await broker.gather({r.name: f for r, f in futures.items()}, "DescribeConfigs")
    policies: dict[str, str] = {}
    for name, entries in answers.items():
        if not isinstance(entries, BrokerError) and "cleanup.policy" in entries:
            policies[name] = str(entries["cleanup.policy"].value or "")
    return policies


@dataclass(frozen=True)
class _Shown:
    """A topic of the page, as metadata describes it (no Kafka objects kept)."""

    name: str
    partitions: tuple[int, ...]
    replication_factor: int
    under_replicated: int
    offline: int
    error: str


def _page_of(
    metadata: Any, needle: str, include_internal: bool, page: int, per_page: int
) -> tuple[int, int, list[_Shown]]:
    """(total, page, topics of the page): filtered, sorted and cut in the worker thread."""
    names = sorted(
        name
        for name in metadata.topics
        if (include_internal or not is_internal(name)) and needle in name.casefold()
    )
    page = min(max(1, page), max(1, -(-len(names) // per_page)))
    shown = []
    for name in names[(page - 1) * per_page : page * per_page]:
        topic = metadata.topics[name]
        parts = list(topic.partitions.values())
        shown.append(
            _Shown(
                name=name,
                partitions=tuple(sorted(p.id for p in parts)),
                replication_factor=max((len(p.replicas) for p in parts), default=0),
                under_replicated=sum(1 for p in parts if len(p.isrs) < len(p.replicas)),
                offline=sum(1 for p in parts if p.leader < 0),
                error=topic.error.str() if topic.error is not None else "",
            )
        )
    return len(names), page, shown


async def topic_page(
    broker: KafkaBroker,
    *,
    page: int = 1,
    per_page: int = 50,
    name_filter: str = "",
    include_internal: bool = False,
) -> TopicPage:
    per_page = max(1, per_page)
    needle = name_filter.strip().casefold()
    total, page, shown = await broker.read_metadata(
        lambda metadata: _page_of(metadata, needle, include_internal, page, per_page)
    )
    partitions = [(t.name, p) for t in shown for p in t.partitions]
    (low, high), policies = await asyncio.gather(
        broker.watermarks(partitions), cleanup_policies(broker, [t.name for t in shown])
    )
    rows = []
    for t in shown:
        counts = [
            high[(t.name, p)] - low[(t.name, p)]
            if (t.name, p) in low and (t.name, p) in high
            else None
            for p in t.partitions
        ]
        rows.append(
            TopicSummary(
                name=t.name,
                partitions=len(t.partitions),
                replication_factor=t.replication_factor,
                under_replicated=t.under_replicated,
                offline=t.offline,
                internal=is_internal(t.name),
                messages=None if None in counts else sum(c or 0 for c in counts),
                cleanup_policy=policies.get(t.name),
                error=t.error,
            )
        )
    return TopicPage(
        topics=tuple(rows),
        total=total,
        page=page,
        per_page=per_page,
        name_filter=name_filter,
        include_internal=include_internal,
        checked_at=datetime.now(UTC),
    )


async def describe_topic(broker: KafkaBroker, topic: str) -> Any:
    """The TopicDescription of ``topic``; :class:`NotFound` when it does not exist."""
    try:
        return await broker.result(describe_request(broker, topic), f"topic {topic!r}")
    except NotFound:
        raise NotFound(_NO_TOPIC.format(topic)) from None


_NO_TOPIC = "no topic named {!r} on this cluster"


def describe_request(broker: KafkaBroker, topic: str) -> concurrent.futures.Future[Any]:
    """DescribeTopicPartitions of ``topic``, sent; :func:`described` reads the answer
    that :meth:`~brokers.kafka.KafkaBroker.wait_all` gives."""
    futures = broker.admin.describe_topics(
        TopicCollection([topic]), request_timeout=broker.config.timeout
    )
    return futures[topic]


def described(answer: Any, topic: str) -> Any:
    """The TopicDescription in a waited-for answer; :class:`NotFound` or the BrokerError."""
    if isinstance(answer, NotFound):
        raise NotFound(_NO_TOPIC.format(topic))
    if isinstance(answer, BrokerError):
        raise answer
    return answer


async def topic_detail(broker: KafkaBroker, topic: str) -> TopicDetail:
    described = await describe_topic(broker, topic)
    partitions = [(topic, p.id) for p in described.partitions]
    resource = ConfigResource(ResourceType.TOPIC, topic)
    configs_future = broker.admin.describe_configs(
        [resource], request_timeout=broker.config.timeout
    )
    (low, high), configs = await asyncio.gather(
        broker.watermarks(partitions),
        broker.gather({r.name: f for r, f in configs_future.items()}, "DescribeConfigs"),
    )
    entries = configs.get(topic)
    values: list[ConfigValue] = []
    if entries is not None and not isinstance(entries, BrokerError):
        values = [
            ConfigValue(
                name=e.name,
                value=None if e.is_sensitive else e.value,
                source=_source_name(e.source),
                is_default=bool(e.is_default),
                is_read_only=bool(e.is_read_only),
                is_sensitive=bool(e.is_sensitive),
            )
            for e in entries.values()
        ]
    values.sort(key=lambda v: (v.is_default, v.name))
    policy = next((v.value for v in values if v.name == "cleanup.policy"), None)
    return TopicDetail(
        name=topic,
        internal=bool(described.is_internal),
        partitions=tuple(
            PartitionInfo(
                partition=p.id,
                leader=p.leader.id if p.leader is not None else None,
                replicas=tuple(r.id for r in p.replicas),
                isr=tuple(r.id for r in p.isr),
                low=low.get((topic, p.id)),
                high=high.get((topic, p.id)),
            )
            for p in sorted(described.partitions, key=lambda p: p.id)
        ),
        configs=tuple(values),
        cleanup_policy=policy,
        checked_at=datetime.now(UTC),
    )


def _source_name(source: Any) -> str:
    """``DYNAMIC_TOPIC_CONFIG`` (or its number) -> ``"dynamic topic"``."""
    try:
        name = ConfigSource(int(source)).name
    except (TypeError, ValueError):
        return str(source)
    return name.lower().removesuffix("_config").replace("_", " ")


async def topic_partitions(broker: KafkaBroker, topic: str) -> list[int]:
    """Partition ids of ``topic``; :class:`NotFound` if it does not exist."""
    described = await describe_topic(broker, topic)
    return sorted(p.id for p in described.partitions)
