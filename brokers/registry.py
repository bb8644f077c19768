"""Maps a cluster kind to its adapter class, imported lazily.

A new broker kind is one package in ``brokers/`` plus one line here. Adapters are
imported on first use so that a deployment watching only RabbitMQ never loads
librdkafka, and the other way round.
"""

from __future__ import annotations

import difflib
from importlib import import_module
from typing import cast

from brokers.base import Broker, ClusterConfig, ConfigError

ADAPTERS: dict[str, str] = {
    "rabbitmq": "brokers.rabbitmq.RabbitMQBroker",
    "kafka": "brokers.kafka.KafkaBroker",
}


def adapter_class(kind: str) -> type[Broker]:
    try:
        dotted = ADAPTERS[kind]
    except KeyError:
        hint = difflib.get_close_matches(kind, ADAPTERS, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigError(f"unknown broker kind {kind!r} (known: {known}){suggestion}") from None
    module_name, _, class_name = dotted.rpartition(".")
    return cast(type[Broker], getattr(import_module(module_name), class_name))


def make_broker(config: ClusterConfig) -> Broker:
    return adapter_class(config.kind)(config)  # type: ignore[call-arg]
