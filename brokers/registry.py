"""Maps a cluster kind to its :class:`BrokerKind`, imported lazily.

A new broker kind is one package in ``brokers/`` (with a ``kind`` module) plus
one line here, and it must pass the contract tests in ``tests/brokers/contract/``.
Kinds are imported on first use so that a deployment watching only RabbitMQ
never loads librdkafka, and the other way round.

This is the only module that looks a kind up by its name. Everything else asks
:func:`kind_of` for the kind of a cluster and uses its capabilities;
:func:`require` turns a missing capability into :class:`NotSupported`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from importlib import import_module
from typing import TypeVar, cast

from brokers.base import Broker, ClusterConfig, ConfigError, NotSupported
from brokers.base.contract import BrokerKind

KINDS: dict[str, str] = {
    "rabbitmq": "brokers.rabbitmq.kind",
    "kafka": "brokers.kafka.kind",
}

T = TypeVar("T")


def kind_named(name: str) -> BrokerKind:
    """The kind called ``name``; a ConfigError that suggests the closest known name."""
    try:
        module = KINDS[name]
    except KeyError:
        hint = difflib.get_close_matches(name, KINDS, n=1)
        suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
        known = ", ".join(sorted(KINDS))
        raise ConfigError(f"unknown broker kind {name!r} (known: {known}){suggestion}") from None
    return cast(BrokerKind, import_module(module).KIND)


def kind_of(config: ClusterConfig) -> BrokerKind:
    return kind_named(config.kind)


def adapter_class(kind: str) -> type[Broker]:
    return kind_named(kind).adapter


def make_broker(config: ClusterConfig) -> Broker:
    return kind_of(config).adapter(config)  # type: ignore[call-arg]


def require(config: ClusterConfig, pick: Callable[[BrokerKind], T | None], what: str) -> T:
    """The capability ``pick`` takes from the cluster's kind; NotSupported if it has none.

    ``require(config, lambda k: k.deadletters, "dead-letter queues")``
    """
    kind = kind_of(config)
    found = pick(kind)
    if found is None:
        raise NotSupported(f"{what} of {kind.label} clusters are not supported")
    return found
