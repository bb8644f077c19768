"""Frozen results of the Kafka browsing features (groups: group_models).

``None`` always means unknown (the broker did not say, or a call for that
item failed), never zero. Every result carries the time it was read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from brokers.base import Node

# -- cluster and topics --------------------------------------------------------


@dataclass(frozen=True)
class KafkaCluster:
    cluster_id: str | None
    controller_id: int | None
    brokers: tuple[Node, ...]
    topics: int
    partitions: int
    version: str | None
    checked_at: datetime


@dataclass(frozen=True)
class TopicSummary:
    """One row of the topics list. ``messages`` is the sum of high - low watermarks."""

    name: str
    partitions: int
    replication_factor: int
    under_replicated: int
    offline: int
    internal: bool
    messages: int | None
    cleanup_policy: str | None
    error: str = ""

    @property
    def compacted(self) -> bool | None:
        """On a compacted topic high - low counts offsets, not records: an estimate."""
        if self.cleanup_policy is None:
            return None
        return "compact" in self.cleanup_policy


@dataclass(frozen=True)
class TopicPage:
    topics: tuple[TopicSummary, ...]
    total: int
    page: int
    per_page: int
    name_filter: str
    include_internal: bool
    checked_at: datetime

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class PartitionInfo:
    partition: int
    leader: int | None
    replicas: tuple[int, ...]
    isr: tuple[int, ...]
    low: int | None
    high: int | None

    @property
    def messages(self) -> int | None:
        if self.low is None or self.high is None:
            return None
        return self.high - self.low

    @property
    def under_replicated(self) -> bool:
        return len(self.isr) < len(self.replicas)


@dataclass(frozen=True)
class ConfigValue:
    name: str
    value: str | None
    source: str
    is_default: bool
    is_read_only: bool
    is_sensitive: bool


@dataclass(frozen=True)
class TopicDetail:
    name: str
    internal: bool
    partitions: tuple[PartitionInfo, ...]
    configs: tuple[ConfigValue, ...]
    cleanup_policy: str | None
    checked_at: datetime

    @property
    def messages(self) -> int | None:
        counts = [p.messages for p in self.partitions]
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)

    @property
    def compacted(self) -> bool:
        return "compact" in (self.cleanup_policy or "")

    @property
    def compact_only(self) -> bool:
        return is_compact_only(self.cleanup_policy)


def is_compact_only(policy: str | None) -> bool:
    return {p.strip() for p in (policy or "").split(",") if p.strip()} == {"compact"}


@dataclass(frozen=True)
class TopicReader:
    """A consumer group with committed offsets on a topic."""

    group_id: str
    state: str | None
    partitions: int
    lag: int | None


@dataclass(frozen=True)
class TopicReaders:
    """The groups with offsets committed on a topic, read live.

    ``total`` groups could be reading it and the first ``checked`` were asked:
    every group of the cluster, or (``known_from`` set) those the collector's
    sample of that time saw reading the topic.
    """

    groups: tuple[TopicReader, ...]
    checked: int
    total: int
    checked_at: datetime
    known_from: datetime | None = None

    @property
    def complete(self) -> bool:
        return self.checked >= self.total


# -- records -------------------------------------------------------------------


@dataclass(frozen=True)
class KafkaRecord:
    topic: str
    partition: int
    offset: int
    timestamp: datetime | None
    timestamp_type: str | None
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class ScannedRange:
    """What was read of one partition: offsets ``first`` .. ``last`` (None if nothing).

    ``next`` is where the following page starts; ``at_end`` says the read
    reached the end of the partition (its high watermark at the time).
    """

    partition: int
    low: int | None
    high: int | None
    start: int | None
    first: int | None
    last: int | None
    next: int | None
    count: int
    at_end: bool


@dataclass(frozen=True)
class RecordPage:
    """Records of one browse or search, oldest timestamp first.

    ``partitions`` are all of the topic's partitions; ``ranges`` cover the chosen ones.

    ``stopped`` is empty when every partition got its share or reached its
    end, else why the read stopped early: ``"time"``, ``"records"`` (the scan
    bound of a search) or ``"bytes"`` (the page's byte budget).
    """

    topic: str
    partitions: tuple[int, ...]
    records: tuple[KafkaRecord, ...]
    ranges: tuple[ScannedRange, ...]
    scanned: int
    stopped: str
    checked_at: datetime


# -- writes ------------------------------------------------------------------


@dataclass(frozen=True)
class Produced:
    topic: str
    partition: int
    offset: int
    timestamp: datetime | None


@dataclass(frozen=True)
class PurgedPartition:
    partition: int
    low_before: int | None
    high_before: int | None
    low_after: int | None

    @property
    def deleted(self) -> int | None:
        if self.low_before is None or self.low_after is None:
            return None
        return self.low_after - self.low_before


@dataclass(frozen=True)
class PurgeResult:
    topic: str
    partitions: tuple[PurgedPartition, ...]
    checked_at: datetime

    @property
    def deleted(self) -> int | None:
        counts = [p.deleted for p in self.partitions]
        return None if any(c is None for c in counts) else sum(c or 0 for c in counts)
