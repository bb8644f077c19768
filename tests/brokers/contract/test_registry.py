"""The registry: every kind it names loads, and has a contract config here."""

from __future__ import annotations

import pytest

from brokers.base import ConfigError, NotSupported
from brokers.base.contract import BrokerKind
from brokers.registry import KINDS, kind_named, make_broker, require
from tests.brokers.contract.conftest import CONFIG_FIXTURES


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
