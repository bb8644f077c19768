"""The registry: every kind it names loads, and has a contract config here."""

from __future__ import annotations

import pytest

from brokers.base import ConfigError, NotSupported
from brokers.base.contract import BrokerKind
from brokers.registry import KINDS, kind_named, make_broker, require
from tests.brokers.contract.conftest import CONFIG_FIXTURES
from tests.support.sandbox import SANDBOXES


def test_every_registered_kind_has_a_contract_config():
    assert sorted(CONFIG_FIXTURES) == sorted(KINDS)


def test_each_kind_is_named_as_registered(kind_config, kind: BrokerKind):
    assert kind.name == kind_config.kind
    assert isinstance(make_broker(kind_config), kind.adapter)


def test_an_unknown_kind_is_a_config_error_with_a_suggestion():
    with pytest.raises(ConfigError, match="did you mean 'kafka'"):
        kind_named("kafak")


def test_require_refuses_a_missing_capability(kind_config):
    with pytest.raises(NotSupported, match="widgets of"):
        require(kind_config, lambda k: None, "widgets")


# What each kind offers of browse, tail and move. A capability's tests run only for
# the kinds that offer it; this keeps a capability gone missing from going unnoticed.
BROWSE_TAIL_MOVE = {"rabbitmq": {"queues", "tap", "mover"}, "kafka": {"topics", "tap"}}


def test_every_registered_kind_has_a_sandbox_and_expected_capabilities():
    assert sorted(SANDBOXES) == sorted(KINDS) == sorted(BROWSE_TAIL_MOVE)


def test_each_kind_offers_the_browse_tail_and_move_capabilities_expected(kind: BrokerKind):
    fields = {"queues": kind.queues, "topics": kind.topics, "tap": kind.tap, "mover": kind.mover}
    offered = {name for name, found in fields.items() if found is not None}
    assert offered == BROWSE_TAIL_MOVE[kind.name]


async def test_the_overview_counts_a_kind_shows_are_counted(kind_config, kind: BrokerKind):
    # The overview page shows these counts for the kind; each is an Overview field
    # the adapter fills in, never one left None as "not applicable".
    assert kind.overview_counts
    async with make_broker(kind_config) as broker:
        overview = await broker.overview()
    for field, label in kind.overview_counts:
        assert label
        assert getattr(overview, field) is not None, field


class _Defaults:
    """An environment that sets nothing: every setting takes its default."""

    def text(self, name: str, default: str = "") -> str:
        return default

    def secret(self, name: str, default: str = "") -> str:
        return default


async def test_each_kinds_local_cluster_is_the_broker_ops_up_starts(kind: BrokerKind):
    assert kind.local_cluster is not None
    config = kind.local_cluster(_Defaults(), 4.0)
    assert config.kind == kind.name
    async with make_broker(config) as broker:
        await broker.ping()
