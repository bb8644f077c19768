"""Kafka as a broker kind: the adapter and its capabilities, named by the registry."""

from __future__ import annotations

from brokers.base.contract import BrokerKind
from brokers.kafka.adapter import KafkaBroker
from brokers.kafka.deadletters.capability import DEAD_LETTERS

KIND = BrokerKind(
    name="kafka",
    label="Kafka",
    adapter=KafkaBroker,
    has_vhosts=False,
    deadletters=DEAD_LETTERS,
)
