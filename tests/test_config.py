"""Cluster configuration from the environment and a TOML file."""

from __future__ import annotations

import pytest

from brokers.base import ConfigError, Secret
from brokers.base.config import split_credentials
from brokers.registry import adapter_class
from dashboard.core.cluster_config import load_clusters


def test_it_defaults_to_the_local_brokers(monkeypatch):
    monkeypatch.delenv("MQB_CLUSTERS_FILE", raising=False)
    clusters = load_clusters()
    assert [c.kind for c in clusters] == ["rabbitmq", "kafka"]
    rabbit = clusters[0]
    assert rabbit.amqp_url == "amqp://127.0.0.1:5672/"
    assert rabbit.password.reveal() == "guest"


def test_it_takes_credentials_out_of_urls(monkeypatch):
    monkeypatch.setenv("MQB_RABBITMQ_URL", "amqps://bob:s%40cret@rabbit.example:5671/prod")
    rabbit = load_clusters()[0]
    assert rabbit.amqp_url == "amqps://rabbit.example:5671/prod"
    assert rabbit.username == "bob"
    assert rabbit.password.reveal() == "s@cret"
    assert "s@cret" not in repr(rabbit)


def test_it_reads_secrets_from_files(monkeypatch, tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("from-a-file\n")
    monkeypatch.setenv("MQB_RABBITMQ_PASSWORD_FILE", str(secret))
    assert load_clusters()[0].password.reveal() == "from-a-file"


def test_secret_never_shows_itself():
    s = Secret("hunter2")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s}"


def test_it_reads_any_number_of_clusters_from_a_file(monkeypatch, tmp_path):
    path = tmp_path / "clusters.toml"
    path.write_text(
        """
[[cluster]]
slug = "prod-rabbit"
kind = "rabbitmq"
amqp_url = "amqps://rabbit.internal:5671/"
management_url = "https://rabbit.internal:15671"
username = "monitor"
password_env = "PROD_RABBIT_PW"
protected = true

[[cluster]]
slug = "prod-kafka"
kind = "kafka"
bootstrap_servers = "k1:9093,k2:9093"
[cluster.client_options]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "monitor"
[cluster.secret_options_env]
"sasl.password" = "PROD_KAFKA_PW"
"""
    )
    monkeypatch.setenv("MQB_CLUSTERS_FILE", str(path))
    monkeypatch.setenv("PROD_RABBIT_PW", "r-secret")
    monkeypatch.setenv("PROD_KAFKA_PW", "k-secret")
    rabbit, kafka = load_clusters()
    assert rabbit.protected and rabbit.password.reveal() == "r-secret"
    assert kafka.client_options["security.protocol"] == "SASL_SSL"
    assert kafka.secret_options["sasl.password"].reveal() == "k-secret"
    assert "k-secret" not in repr(kafka)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('slug = "a"\nkind = "rabbitmq"\npassword = "x"', "secrets may not be written"),
        ('slug = "a"\nkind = "rabbitmq"\namqp_url = "amqp://u:p@h/"', "contains a password"),
        (
            'slug = "a"\nkind = "kafka"\n[cluster.client_options]\n"sasl.password" = "x"',
            "is a secret",
        ),
        ('slug = "a"\nkind = "rabbitmq"\npassword_env = "UNSET_FOR_SURE"', "is not set"),
        ('slug = "A B"\nkind = "kafka"', "slug"),
        ('slug = "a"\nkind = "kafak"', "kind must be one of"),
        ('slug = "a"\nkind = "kafka"\nbootstrap = "x"', "unknown key"),
    ],
)
def test_it_refuses_bad_files_clearly(monkeypatch, tmp_path, body, message):
    path = tmp_path / "clusters.toml"
    path.write_text("[[cluster]]\n" + body + "\n")
    monkeypatch.setenv("MQB_CLUSTERS_FILE", str(path))
    with pytest.raises(ConfigError) as info:
        load_clusters()
    assert message in info.value.message


def test_it_suggests_the_kind_you_meant():
    with pytest.raises(ConfigError) as info:
        adapter_class("rabitmq")
    assert "did you mean 'rabbitmq'" in info.value.message


def test_split_credentials_keeps_ipv6_hosts():
    assert split_credentials("amqp://u:p@[::1]:5672/v") == ("amqp://[::1]:5672/v", "u", "p")
