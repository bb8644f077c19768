"""RabbitMQ as a broker kind: the adapter and its capabilities, named by the registry."""

from __future__ import annotations

from brokers.base.contract import BrokerKind
from brokers.rabbitmq.adapter import RabbitMQBroker, rabbitmq_adapter
from brokers.rabbitmq.deadletters.capability import DEAD_LETTERS
from brokers.rabbitmq.move import QueueMover
from brokers.rabbitmq.sampler import RabbitMQMetrics
from brokers.rabbitmq.tail import QueueTap

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
)
