"""RabbitMQ as a broker kind: the adapter and its capabilities, named by the registry."""

from __future__ import annotations

from brokers.base.config import ClusterConfig, Secret, split_credentials
from brokers.base.contract import BrokerKind, Environment
from brokers.rabbitmq.adapter import RabbitMQBroker, rabbitmq_adapter
from brokers.rabbitmq.deadletters.capability import DEAD_LETTERS
from brokers.rabbitmq.move import QueueMover
from brokers.rabbitmq.sampler import RabbitMQMetrics
from brokers.rabbitmq.tail import QueueTap


def local_cluster(env: Environment, timeout: float) -> ClusterConfig:
    """The RabbitMQ that ``ops/up.sh`` starts, or the one MQB_RABBITMQ_* names."""
    url, user, password = split_credentials(
        env.secret("MQB_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/")
    )
    return ClusterConfig(
        slug="local-rabbitmq",
        kind="rabbitmq",
        name=env.text("MQB_RABBITMQ_NAME", "Local RabbitMQ"),
        amqp_url=url,
        management_url=env.text("MQB_RABBITMQ_MANAGEMENT_URL", "http://127.0.0.1:15672"),
        prometheus_urls=tuple(
            u.strip() for u in env.text("MQB_RABBITMQ_PROMETHEUS_URL", "").split(",") if u.strip()
        ),
        username=env.text("MQB_RABBITMQ_USER", user or "guest"),
        password=Secret(env.secret("MQB_RABBITMQ_PASSWORD", password or "guest")),
        timeout=timeout,
    )


KIND = BrokerKind(
    name="rabbitmq",
    label="RabbitMQ",
    adapter=RabbitMQBroker,
    has_vhosts=True,
    overview_counts=(
        ("queues", "Queues"),
        ("exchanges", "Exchanges"),
        ("consumers", "Consumers"),
        ("connections", "Connections"),
        ("messages", "Messages"),
    ),
    metrics=RabbitMQMetrics(),
    # The adapter is its own queue browser.
    queues=rabbitmq_adapter,
    tap=QueueTap(),
    mover=QueueMover(),
    deadletters=DEAD_LETTERS,
    local_cluster=local_cluster,
)
