"""Kafka's topic browser: :class:`brokers.base.browse.TopicBrowser` over one adapter.

Each method is the function of the same name in :mod:`.topics`, :mod:`.groups`,
:mod:`.offsets`, :mod:`.browse` or :mod:`.write`, called with the adapter; the
features, settings and limits are in those modules' heads.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from brokers.base.browse import Header, Matcher
from brokers.kafka import browse, groups, offsets, topics, write
from brokers.kafka.adapter import KafkaBroker
from brokers.kafka.group_models import GroupDetail, GroupPage, OffsetResetPlan
from brokers.kafka.models import (
    KafkaCluster,
    KafkaRecord,
    Produced,
    PurgeResult,
    RecordPage,
    TopicDetail,
    TopicPage,
    TopicReaders,
)


@dataclass(frozen=True)
class KafkaTopicBrowser:
    broker: KafkaBroker

    async def cluster_info(self) -> KafkaCluster:
        return await topics.cluster_info(self.broker)

    async def topic_page(
        self,
        *,
        page: int = 1,
        per_page: int = 50,
        name_filter: str = "",
        include_internal: bool = False,
    ) -> TopicPage:
        return await topics.topic_page(
            self.broker,
            page=page,
            per_page=per_page,
            name_filter=name_filter,
            include_internal=include_internal,
        )

    async def topic_detail(self, topic: str) -> TopicDetail:
        return await topics.topic_detail(self.broker, topic)

    async def topic_readers(
        self,
        topic: str,
        *,
        max_groups: int,
        candidates: Collection[str] | None = None,
        known_from: datetime | None = None,
    ) -> TopicReaders:
        return await groups.topic_readers(
            self.broker, topic, max_groups=max_groups, candidates=candidates, known_from=known_from
        )

    async def group_page(
        self, *, page: int = 1, per_page: int = 50, name_filter: str = ""
    ) -> GroupPage:
        return await groups.group_page(
            self.broker, page=page, per_page=per_page, name_filter=name_filter
        )

    async def group_detail(self, group_id: str) -> GroupDetail:
        return await groups.group_detail(self.broker, group_id)

    async def reset_offsets(
        self,
        group_id: str,
        *,
        topic: str,
        partition: int | None,
        to: str,
        timestamp_ms: int | None = None,
        offset: int | None = None,
        apply: bool = False,
    ) -> OffsetResetPlan:
        return await offsets.reset_offsets(
            self.broker,
            group_id,
            topic=topic,
            partition=partition,
            to=to,
            timestamp_ms=timestamp_ms,
            offset=offset,
            apply=apply,
        )

    async def read_page(
        self,
        topic: str,
        *,
        partitions: Sequence[int] | None = None,
        start: str = "oldest",
        offset: int | None = None,
        timestamp_ms: int | None = None,
        cursor: dict[int, int] | None = None,
        limit: int = 50,
        max_bytes: int = 16 * 1024 * 1024,
        match: Matcher | None = None,
        max_scan: int | None = None,
        max_seconds: float | None = None,
        executor: concurrent.futures.Executor | None = None,
    ) -> RecordPage:
        return await browse.read_page(
            self.broker,
            topic,
            partitions=partitions,
            start=start,
            offset=offset,
            timestamp_ms=timestamp_ms,
            cursor=cursor,
            limit=limit,
            max_bytes=max_bytes,
            match=match,
            max_scan=max_scan,
            max_seconds=max_seconds,
            executor=executor,
        )

    async def read_record(
        self,
        topic: str,
        partition: int,
        offset: int,
        *,
        executor: concurrent.futures.Executor | None = None,
    ) -> KafkaRecord:
        return await browse.read_record(self.broker, topic, partition, offset, executor=executor)

    async def produce(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[Header] | None = None,
        partition: int | None = None,
    ) -> Produced:
        return await write.produce(
            self.broker, topic, value=value, key=key, headers=headers, partition=partition
        )

    async def purge(self, topic: str, *, partition: int | None = None) -> PurgeResult:
        return await write.purge(self.broker, topic, partition=partition)
