"""Kafka as a broker kind: the adapter and its capabilities, named by the registry."""

from __future__ import annotations

from brokers.base import Broker
from brokers.base.config import ClusterConfig
from brokers.base.contract import BrokerKind, Environment
from brokers.kafka.adapter import KafkaBroker, kafka_adapter
from brokers.kafka.deadletters.capability import DEAD_LETTERS
from brokers.kafka.sampler import KafkaMetrics
from brokers.kafka.tail import TopicTap
from brokers.kafka.topic_browser import KafkaTopicBrowser


def topic_browser(broker: Broker) -> KafkaTopicBrowser:
    return KafkaTopicBrowser(kafka_adapter(broker))


def local_cluster(env: Environment, timeout: float) -> ClusterConfig:
    """The Kafka that ``ops/up.sh`` starts, or the one MQB_KAFKA_* names."""
    return ClusterConfig(
        slug="local-kafka",
        kind="kafka",
        name=env.text("MQB_KAFKA_NAME", "Local Kafka"),
        bootstrap_servers=env.text("MQB_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092"),
        timeout=timeout,
    )


KIND = BrokerKind(
    name="kafka",
    label="Kafka",
    adapter=KafkaBroker,
    has_vhosts=False,
    overview_counts=(
        ("topics", "Topics"),
        ("partitions", "Partitions"),
        ("consumer_groups", "Consumer groups"),
    ),
    metrics=KafkaMetrics(),
    deadletters=DEAD_LETTERS,
    topics=topic_browser,
    tap=TopicTap(),
    local_cluster=local_cluster,
)
