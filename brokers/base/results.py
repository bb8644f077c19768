"""What crosses the adapter boundary for every broker kind: frozen dataclasses, never dicts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Node:
    name: str
    running: bool = True
    host: str = ""
    port: int | None = None
    rack: str | None = None
    is_controller: bool = False
    alarms: tuple[str, ...] = ()
    """resource alarms raised on the node (RabbitMQ: ``memory``, ``disk``)"""


@dataclass(frozen=True)
class Overview:
    """A cluster at a glance. ``None`` means unknown or not applicable, never 0."""

    kind: str
    product: str
    version: str | None
    cluster_name: str | None
    nodes: tuple[Node, ...]
    checked_at: datetime
    queues: int | None = None
    exchanges: int | None = None
    connections: int | None = None
    topics: int | None = None
    partitions: int | None = None
    consumer_groups: int | None = None
    consumers: int | None = None
    messages: int | None = None
    under_replicated_partitions: int | None = None
    """partitions with fewer in-sync replicas than replicas (Kafka; None elsewhere)"""
    offline_partitions: int | None = None
    """partitions without a leader (Kafka; None elsewhere)"""
    replication_topics: tuple[str, ...] = ()
    """the first topics (by name) holding under-replicated or offline partitions"""


@dataclass(frozen=True)
class DeadLetterQueue:
    """A queue or topic that holds dead letters, found by name or by a dead-letter exchange.

    ``depth`` is the number of messages waiting (RabbitMQ) or the sum of
    high - low watermarks (Kafka); None when the broker did not say.
    """

    name: str
    depth: int | None
    vhost: str | None = None
    checked_at: datetime | None = None


DLQ_NAME_PATTERN = r"(?i)(^|[._-])(dlq|dlt)$"
"""Names that say "dead letters": ``dlq``, ``orders.dlq``, ``orders-dlq``, ``orders.DLT``."""
