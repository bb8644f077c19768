"""The browse capabilities: what the dashboard's queue and topic pages call.

A kind offers one of them, or neither (``BrokerKind.queues``, ``BrokerKind.topics``):

* :class:`QueueBrowser`: vhosts, queues (pages, summary, detail), exchanges,
  peeking at messages (and the plan that says whether a peek changes the
  queue), publishing and purging. RabbitMQ's adapter is one.
* :class:`TopicBrowser`: the cluster, topics, partitions, consumer groups and
  their offsets, records (pages, searches, one record), producing and
  purging. Kafka offers one over its adapter (``brokers.kafka.browser``).

A kind's capability is a function from the connected adapter the kind made
(``BrokerKind.adapter``) to the browser: the dashboard keeps one adapter per
cluster and process, and the browser works over it.

The results are the frozen models of the package that first offered the
capability (``brokers.rabbitmq.models``; ``brokers.kafka.models`` and
``group_models``): a new kind with queues or topics returns the same types.
They are named here for type checking only, so ``brokers.base`` does not
import a broker package when it runs.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from brokers.kafka.group_models import GroupDetail, GroupPage, OffsetResetPlan
    from brokers.kafka.models import (
        KafkaCluster,
        KafkaRecord,
        Produced,
        RecordPage,
        TopicDetail,
        TopicPage,
        TopicReaders,
    )
    from brokers.kafka.models import PurgeResult as TopicPurgeResult
    from brokers.rabbitmq.models import (
        ExchangeDetail,
        ExchangePage,
        OutgoingMessage,
        PeekPlan,
        PeekResult,
        PublishResult,
        PurgeResult,
        QueueDetail,
        QueuePage,
        QueueQuery,
        QueueRow,
        Vhost,
    )

Matcher = Callable[[bytes | None, bytes | None], bool]
"""A record search: (key, value) -> whether the record is a hit."""

Header = tuple[str, bytes | None]


class QueueBrowser(Protocol):
    """Queues addressed by vhost and name, their exchanges and their messages."""

    async def vhosts(self) -> tuple[Vhost, ...]: ...

    async def queue_page(self, query: QueueQuery) -> QueuePage: ...

    async def queue_summary(self, vhost: str, name: str) -> QueueRow: ...

    async def queue_detail(
        self, vhost: str, name: str, *, scan_limit: int = 2000
    ) -> QueueDetail: ...

    async def exchange_page(
        self, vhost: str | None, *, page: int = 1, page_size: int = 100, name: str = ""
    ) -> ExchangePage: ...

    async def exchange_detail(self, vhost: str, name: str) -> ExchangeDetail: ...

    async def peek_plan(self, vhost: str, queue: str) -> PeekPlan:
        """Whether a peek would change the queue, and the delivery limit that refuses it."""

    async def peek(
        self, vhost: str, queue: str, count: int, *, max_bytes: int = 256 << 20
    ) -> PeekResult:
        """The first ``count`` messages; what that does to the queue is in :meth:`peek_plan`."""

    async def publish(self, vhost: str, message: OutgoingMessage) -> PublishResult: ...

    async def purge(self, vhost: str, queue: str) -> PurgeResult: ...


class TopicBrowser(Protocol):
    """Topics, partitions, consumer groups and offsets, and the records themselves."""

    async def cluster_info(self) -> KafkaCluster: ...

    async def topic_page(
        self,
        *,
        page: int = 1,
        per_page: int = 50,
        name_filter: str = "",
        include_internal: bool = False,
    ) -> TopicPage: ...

    async def topic_detail(self, topic: str) -> TopicDetail: ...

    async def topic_readers(
        self,
        topic: str,
        *,
        max_groups: int,
        candidates: Collection[str] | None = None,
        known_from: datetime | None = None,
    ) -> TopicReaders:
        """Groups with offsets committed on ``topic``, checking at most ``max_groups``:
        of every group, or of ``candidates`` (the groups a sample taken at
        ``known_from`` saw reading it)."""

    async def group_page(
        self, *, page: int = 1, per_page: int = 50, name_filter: str = ""
    ) -> GroupPage: ...

    async def group_detail(self, group_id: str) -> GroupDetail: ...

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
        """The new offsets per partition (a preview); with ``apply`` also written."""

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
        """A page of records (``match`` None) or of search hits (``match`` set)."""

    async def read_record(
        self,
        topic: str,
        partition: int,
        offset: int,
        *,
        executor: concurrent.futures.Executor | None = None,
    ) -> KafkaRecord:
        """The one record at ``partition``/``offset``; NotFound if there is none."""

    async def produce(
        self,
        topic: str,
        *,
        value: bytes | None,
        key: bytes | None = None,
        headers: list[Header] | None = None,
        partition: int | None = None,
    ) -> Produced: ...

    async def purge(self, topic: str, *, partition: int | None = None) -> TopicPurgeResult:
        """Delete the records up to the high watermark of every partition (or of one)."""
