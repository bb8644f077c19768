"""Every contract test runs once per registered broker kind, against the real broker.

``kind_config`` is the config of a healthy local cluster of each kind in
``brokers.registry.KINDS``; a kind added to the registry without a config here
fails ``test_every_registered_kind_has_a_contract_config``. ``sandbox`` makes the
queues or topics a capability's test works on (``tests.support.sandbox``), and
``broker`` is a connected adapter of the kind.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from brokers.base import Broker, ClusterConfig
from brokers.base.contract import BrokerKind
from brokers.registry import KINDS, kind_named, kind_of, make_broker
from tests.support.sandbox import SANDBOXES, Sandbox

CONFIG_FIXTURES = {"rabbitmq": "rabbitmq_config", "kafka": "kafka_config"}


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run each test for every kind, or, under ``@pytest.mark.capability(name)``, for
    every kind whose BrokerKind has that capability (a kind without it is not a skip:
    the test does not apply; ``test_registry`` pins which kinds offer what)."""
    if "kind_name" not in metafunc.fixturenames:
        return
    names = sorted(KINDS)
    marker = metafunc.definition.get_closest_marker("capability")
    if marker is not None:
        names = [n for n in names if getattr(kind_named(n), marker.args[0]) is not None]
    metafunc.parametrize("kind_name", names)


@pytest.fixture
def kind_config(request: pytest.FixtureRequest, kind_name: str) -> ClusterConfig:
    config: ClusterConfig = request.getfixturevalue(CONFIG_FIXTURES[kind_name])
    return config


@pytest.fixture
def kind(kind_config: ClusterConfig) -> BrokerKind:
    return kind_of(kind_config)


@pytest.fixture
async def sandbox(request: pytest.FixtureRequest, kind: BrokerKind) -> AsyncIterator[Sandbox]:
    """Queues or topics made for one test on the kind's broker, removed afterwards."""
    made = SANDBOXES[kind.name](request)
    try:
        yield made
    finally:
        await made.cleanup()


@pytest.fixture
async def broker(kind_config: ClusterConfig) -> AsyncIterator[Broker]:
    """A connected adapter of the kind, as the dashboard keeps one per cluster."""
    async with make_broker(kind_config) as adapter:
        yield adapter
