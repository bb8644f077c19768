"""RabbitMQ as a broker kind: the adapter and its capabilities, named by the registry."""

from __future__ import annotations

from brokers.base.contract import BrokerKind
from brokers.rabbitmq.adapter import RabbitMQBroker
from brokers.rabbitmq.deadletters.capability import DEAD_LETTERS

KIND = BrokerKind(
    name="rabbitmq",
    label="RabbitMQ",
    adapter=RabbitMQBroker,
    has_vhosts=True,
    deadletters=DEAD_LETTERS,
)
