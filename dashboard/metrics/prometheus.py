"""The Prometheus exposition of the sampled metrics, built without asking any broker.

Everything comes from the latest sample of each cluster in Redis (one MGET)
and two small aggregate queries (dead letters captured, consumers present),
through one custom collector: 10,000 queues are one JSON parse and a loop.
Unknown values are left out, never exported as 0; so is everything but
``mqboard_cluster_up`` of a cluster whose last sample failed.
"""

from __future__ import annotations

import threading
import time as clock
from collections.abc import Iterator
from typing import Any

from django.db.models import Count
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from brokers.base.metrics import FIELDS, split_queue_entity
from dashboard.metrics.fields import time_to_drain
from dashboard.metrics.snapshot import Snapshot, read_snapshots, read_statuses
from dashboard.models import Cluster, Consumer, DeadLetter

QUEUE = {
    "depth": ("mqboard_queue_messages", "Messages in the queue (ready + unacknowledged)"),
    "ready": ("mqboard_queue_messages_ready", "Messages ready for delivery"),
    "unacked": ("mqboard_queue_messages_unacked", "Messages delivered, not yet acknowledged"),
    "publish_rate": ("mqboard_queue_publish_rate", "Messages published per second"),
    "deliver_rate": ("mqboard_queue_deliver_rate", "Messages delivered or got per second"),
    "ack_rate": ("mqboard_queue_ack_rate", "Messages acknowledged per second"),
    "consumers": ("mqboard_queue_consumers", "Consumers of the queue"),
}
TOPIC = {
    "depth": ("mqboard_topic_messages", "Messages kept (sum of high - low watermarks)"),
    "publish_rate": ("mqboard_topic_produce_rate", "Messages produced per second"),
    "consumers": ("mqboard_topic_consumers", "Consumer group members assigned to the topic"),
}
GROUP = {
    "lag": ("mqboard_group_lag", "Messages not consumed yet (end offset - committed offset)"),
    "lag_seconds": (
        "mqboard_group_lag_seconds",
        "Age of the oldest message not consumed yet (record timestamp, else lag / produce rate)",
    ),
    "deliver_rate": ("mqboard_group_consume_rate", "Offsets committed per second"),
    "publish_rate": (
        "mqboard_group_produce_rate",
        "Messages produced per second to its partitions",
    ),
    "consumers": ("mqboard_group_members", "Members of the consumer group"),
}
CLUSTER = {
    "depth": ("mqboard_cluster_messages", "Messages in every queue or topic"),
    "publish_rate": ("mqboard_cluster_publish_rate", "Messages published or produced per second"),
    "deliver_rate": ("mqboard_cluster_deliver_rate", "Messages delivered or consumed per second"),
    "consumers": ("mqboard_cluster_consumers", "Consumers or group members"),
    "lag": ("mqboard_cluster_lag", "Messages not consumed yet, all groups"),
}
INDEX = {name: i for i, name in enumerate(FIELDS)}


class SnapshotCollector:
    """A prometheus_client custom collector over the snapshots and two aggregates."""

    def __init__(
        self,
        snapshots: dict[str, Snapshot],
        kinds: dict[str, str],
        captured: list[dict[str, Any]],
        consumers: list[dict[str, Any]],
    ) -> None:
        self.snapshots, self.kinds, self.captured, self.consumers = (
            snapshots,
            kinds,
            captured,
            consumers,
        )

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "mqboard_cluster_up",
            "1 if the last sample of the cluster succeeded",
            labels=["cluster", "kind"],
        )
        stamp = GaugeMetricFamily(
            "mqboard_cluster_sample_timestamp_seconds",
            "When the cluster was last sampled successfully (Unix time)",
            labels=["cluster"],
        )
        took = GaugeMetricFamily(
            "mqboard_cluster_sample_duration_seconds",
            "How long the last sample took",
            labels=["cluster"],
        )
        live = {}
        for slug, snap in sorted(self.snapshots.items()):
            up.add_metric([slug, self.kinds.get(slug, "")], 1.0 if snap.ok else 0.0)
            if snap.sampled_at is not None:
                stamp.add_metric([slug], snap.sampled_at)
            if isinstance(snap.status.get("seconds"), int | float):
                took.add_metric([slug], float(snap.status["seconds"]))
            if snap.ok and snap.data:
                live[slug] = snap
        yield from (up, stamp, took)
        yield from self._families(live, "cluster", CLUSTER, ["cluster"])
        yield from self._families(live, "queue", QUEUE, ["cluster", "vhost", "queue"])
        yield from self._families(live, "topic", TOPIC, ["cluster", "topic"])
        yield from self._families(live, "group", GROUP, ["cluster", "group"])
        yield from self._drain(live)
        yield from self._dead_letters(live)
        yield from self._consumers()

    @staticmethod
    def _labels(slug: str, entity_type: str, entity: str) -> list[str]:
        if entity_type == "queue":
            return [slug, *split_queue_entity(entity)]
        if entity_type == "cluster":
            return [slug]
        return [slug, entity]

    def _rows(
        self, live: dict[str, Snapshot], entity_type: str
    ) -> Iterator[tuple[str, str, tuple[Any, ...]]]:
        for slug, snap in live.items():
            if entity_type == "cluster":
                if snap.totals is not None:
                    yield slug, slug, snap.totals
                continue
            for entity, values in snap.rows(entity_type):
                yield slug, entity, values

    def _families(
        self,
        live: dict[str, Snapshot],
        entity_type: str,
        wanted: dict[str, tuple[str, str]],
        labels: list[str],
    ) -> Iterator[Metric]:
        families = {
            field: (INDEX[field], GaugeMetricFamily(name, text, labels=labels))
            for field, (name, text) in wanted.items()
        }
        for slug, entity, values in self._rows(live, entity_type):
            label_values = self._labels(slug, entity_type, entity)
            for index, family in families.values():
                value = values[index]
                if value is not None:
                    family.add_metric(label_values, value)
        for _, family in families.values():
            yield family

    def _drain(self, live: dict[str, Snapshot]) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "mqboard_group_time_to_drain_seconds",
            "Seconds until the lag is gone at current rates (left out when not shrinking)",
            labels=["cluster", "group"],
        )
        for slug, entity, values in self._rows(live, "group"):
            drain = time_to_drain("group", values)
            if drain is not None:
                family.add_metric([slug, entity], drain)
        yield family

    def _dead_letters(self, live: dict[str, Snapshot]) -> Iterator[Metric]:
        labels = ["cluster", "vhost", "dlq"]
        depth = GaugeMetricFamily(
            "mqboard_dlq_messages",
            "Messages waiting in a dead-letter queue or topic",
            labels=labels,
        )
        arrivals = GaugeMetricFamily(
            "mqboard_dlq_arrival_rate",
            "Dead letters arriving per second (Kafka: produce rate; RabbitMQ: depth growth + acks)",
            labels=labels,
        )
        for slug, snap in live.items():
            for entity_type in ("queue", "topic"):
                found = dict(snap.extras(entity_type))
                if not found:
                    continue
                for entity, values in snap.rows(entity_type):
                    extra = found.get(entity)
                    if not extra or not extra.get("dlq"):
                        continue
                    vhost, name = (
                        split_queue_entity(entity) if entity_type == "queue" else ("", entity)
                    )
                    if values[0] is not None:
                        depth.add_metric([slug, vhost, name], values[0])
                    if extra.get("arrival_rate") is not None:
                        arrivals.add_metric([slug, vhost, name], extra["arrival_rate"])
        captured = CounterMetricFamily(
            "mqboard_dead_letters_captured",
            "Dead letters captured into the dashboard",
            labels=labels,
        )
        for row in self.captured:
            captured.add_metric([row["cluster__slug"], row["vhost"], row["dlq"]], row["n"])
        yield from (depth, arrivals, captured)

    def _consumers(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "mqboard_consumers_present",
            "Consumers seen in the latest sample: AMQP consumers, Kafka members, Celery workers",
            labels=["cluster", "kind"],
        )
        for row in self.consumers:
            family.add_metric([row["cluster__slug"], row["kind"]], row["n"])
        yield family


_cache: dict[str, Any] = {"key": None, "at": 0.0, "body": b""}
_cache_lock = threading.Lock()
CACHE_SECONDS = 10.0


def render_metrics() -> bytes:
    """The text exposition; raises OSError or RedisError when Redis is away.

    Formatting 10,000 queues takes prometheus_client most of a second, so the
    result is reused while no cluster has a newer sample (at most 10 s):
    several Prometheus servers scraping within one sample interval cost one
    rendering.
    """
    kinds = dict(Cluster.objects.values_list("slug", "kind"))
    statuses = read_statuses(sorted(kinds))
    version = tuple(
        sorted((s, v.get("checked_at"), v.get("sampled_at")) for s, v in statuses.items())
    )
    with _cache_lock:
        if _cache["key"] == version and clock.monotonic() - _cache["at"] < CACHE_SECONDS:
            return bytes(_cache["body"])
    body = _render(kinds)
    with _cache_lock:
        _cache.update(key=version, at=clock.monotonic(), body=body)
    return body


def _render(kinds: dict[str, str]) -> bytes:
    snapshots = read_snapshots(sorted(kinds))
    captured = list(
        DeadLetter.objects.values("cluster__slug", "vhost", "dlq").annotate(n=Count("id"))
    )
    consumers = list(
        Consumer.objects.filter(state="active")
        .values("cluster__slug", "kind")
        .annotate(n=Count("identity", distinct=True))
    )
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshots, kinds, captured, consumers))
    return generate_latest(registry)
