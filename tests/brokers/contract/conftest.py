"""Every contract test runs once per registered broker kind, against the real broker.

``kind_config`` is the config of a healthy local cluster of each kind in
``brokers.registry.KINDS``; a kind added to the registry without a config here
fails ``test_every_registered_kind_has_a_contract_config``.
"""

from __future__ import annotations

import pytest

from brokers.base import ClusterConfig
from brokers.base.contract import BrokerKind
from brokers.registry import KINDS, kind_of

CONFIG_FIXTURES = {"rabbitmq": "rabbitmq_config", "kafka": "kafka_config"}


@pytest.fixture(params=sorted(KINDS))
def kind_config(request: pytest.FixtureRequest) -> ClusterConfig:
    config: ClusterConfig = request.getfixturevalue(CONFIG_FIXTURES[request.param])
    return config


@pytest.fixture
def kind(kind_config: ClusterConfig) -> BrokerKind:
    return kind_of(kind_config)
