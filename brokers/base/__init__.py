"""What every broker kind shares: config, errors, result types and the contract.

* :mod:`.config`: :class:`ClusterConfig` and the :class:`Secret` type;
* :mod:`.errors`: :class:`BrokerError` and its kinds;
* :mod:`.results`: the frozen dataclasses every adapter returns;
* :mod:`.contract`: the :class:`Broker` protocol and :class:`BrokerBase`;
* broker-neutral helpers: :mod:`.validate` (strings a client library can send),
  :mod:`.tail` (what a live tail hands out, and its rate limiter) and
  :mod:`.deadletters` (captured letters, discovery results, requeue outcomes).

The names of the first four are exported here: ``from brokers.base import X``.
"""

from __future__ import annotations

from brokers.base.config import ClusterConfig, Secret
from brokers.base.contract import Broker, BrokerBase
from brokers.base.errors import (
    BrokerAuthError,
    BrokerError,
    BrokerTimeout,
    BrokerUnavailable,
    ConfigError,
    NotFound,
    NotSupported,
)
from brokers.base.results import DLQ_NAME_PATTERN, DeadLetterQueue, Node, Overview

__all__ = [
    "DLQ_NAME_PATTERN",
    "Broker",
    "BrokerAuthError",
    "BrokerBase",
    "BrokerError",
    "BrokerTimeout",
    "BrokerUnavailable",
    "ClusterConfig",
    "ConfigError",
    "DeadLetterQueue",
    "Node",
    "NotFound",
    "NotSupported",
    "Overview",
    "Secret",
]
