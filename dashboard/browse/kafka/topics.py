"""Kafka cluster, topics list and topic detail reads.

The topics list answers from the collector's latest sample
(``dashboard.metrics.snapshot_lists``) unless a live read is asked for or the
snapshot cannot answer: :func:`get_topic_list`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from brokers.base.metrics import FIELDS
from brokers.kafka.models import (
    KafkaCluster,
    TopicDetail,
    TopicPage,
    TopicReaders,
    TopicSummary,
)
from dashboard.browse.kafka.access import check_topic, get_kafka
from dashboard.browse.kafka.groups import GroupIndex
from dashboard.metrics.snapshot_lists import Freshness, Snapshot, live, read_listing

__all__ = [
    "Freshness",
    "TopicIndex",
    "get_kafka_cluster",
    "get_topic_detail",
    "get_topic_list",
    "get_topic_page",
    "get_topic_readers",
]


async def get_kafka_cluster(slug: str) -> KafkaCluster:
    topics = await get_kafka(slug)
    return await topics.cluster_info()


async def get_topic_page(
    slug: str, *, page: int = 1, name_filter: str = "", include_internal: bool = False
) -> TopicPage:
    topics = await get_kafka(slug)
    return await topics.topic_page(
        page=page,
        per_page=settings.MQB_KAFKA_PAGE_SIZE,
        name_filter=name_filter,
        include_internal=include_internal,
    )


async def get_topic_detail(slug: str, topic: str) -> TopicDetail:
    check_topic(topic)
    topics = await get_kafka(slug)
    return await topics.topic_detail(topic)


async def get_topic_readers(slug: str, topic: str) -> TopicReaders:
    """The groups reading ``topic``, their committed offsets and lag read live.

    Which groups to ask comes from the collector's latest sample when it read
    every group (it knows each group's topics): then no group is left out however
    many the cluster has. Otherwise the first ``MQB_KAFKA_TOPIC_GROUPS_MAX`` groups
    are asked.
    """
    check_topic(topic)
    topics = await get_kafka(slug)
    limit = settings.MQB_KAFKA_TOPIC_GROUPS_MAX
    listing = await read_listing(slug, "groups", GroupIndex.build)
    if not isinstance(listing, str):
        cost = listing.snapshot.status.get("cost") or {}
        if (cost.get("groups") or 0) >= (cost.get("groups_total") or 0):
            return await topics.topic_readers(
                topic,
                max_groups=limit,
                candidates=listing.index.readers_of(topic),
                known_from=listing.freshness.as_of,
            )
    return await topics.topic_readers(topic, max_groups=limit)


@dataclass
class TopicIndex:
    """Every sampled topic as a list row, by name (built once per sample)."""

    topics: list[TopicSummary]
    folded: list[str]

    @classmethod
    def build(cls, snapshot: Snapshot) -> TopicIndex:
        extras = dict(snapshot.extras("topic"))
        depth = FIELDS.index("depth")
        rows = []
        for name, values in sorted(snapshot.rows("topic")):
            extra = extras.get(name) or {}
            policy = extra.get("cleanup")
            rows.append(
                TopicSummary(
                    name=name,
                    partitions=int(extra.get("partitions", 0)),
                    replication_factor=int(extra.get("rf", 0)),
                    under_replicated=int(extra.get("under_replicated", 0)),
                    offline=int(extra.get("offline", 0)),
                    internal=False,
                    messages=values[depth],  # type: ignore[arg-type]
                    cleanup_policy=policy if isinstance(policy, str) else None,
                )
            )
        return cls(rows, [t.name.casefold() for t in rows])

    def page(self, page: int, per_page: int, name_filter: str, as_of: datetime) -> TopicPage:
        needle = name_filter.strip().casefold()
        found = (
            [t for t, f in zip(self.topics, self.folded, strict=True) if needle in f]
            if needle
            else self.topics
        )
        page = min(max(1, page), max(1, -(-len(found) // per_page)))
        return TopicPage(
            topics=tuple(found[(page - 1) * per_page : page * per_page]),
            total=len(found),
            page=page,
            per_page=per_page,
            name_filter=name_filter,
            include_internal=False,
            checked_at=as_of,
        )


async def get_topic_list(
    slug: str,
    *,
    page: int = 1,
    name_filter: str = "",
    include_internal: bool = False,
    live_read: bool = False,
) -> tuple[TopicPage, Freshness]:
    """A page of topics from the collector's latest sample; live when asked, when the
    snapshot cannot answer (missing, stale), or for what it leaves out (internal
    topics, topics outside ``MQB_METRICS_KAFKA_TOPICS``)."""
    reason = "asked for a live read" if live_read else ""
    if not reason and include_internal:
        reason = "the collector does not sample internal topics"
    if not reason and settings.MQB_METRICS_KAFKA_TOPICS:
        reason = "the collector samples only some topics (MQB_METRICS_KAFKA_TOPICS)"
    if not reason:
        listing = await read_listing(slug, "topics", TopicIndex.build)
        if not isinstance(listing, str):
            per_page = settings.MQB_KAFKA_PAGE_SIZE
            found = listing.index.page(page, per_page, name_filter, listing.freshness.as_of)
            return found, listing.freshness
        reason = listing
    result = await get_topic_page(
        slug, page=page, name_filter=name_filter, include_internal=include_internal
    )
    return result, live(reason)
