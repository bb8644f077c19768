"""A RabbitMQ cluster listed node by node: the file form, and failover past dead nodes.

The live node is the shared RabbitMQ; the dead ones are a port nobody listens on
(refuses at once) and a socket that accepts connections but never answers (times
out). Kafka takes its bootstrap list whole.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import quote

import pytest

from brokers.base import BrokerError, BrokerTimeout, BrokerUnavailable, ConfigError, Secret
from brokers.kafka.adapter import KafkaBroker
from brokers.rabbitmq.adapter import RabbitMQBroker
from brokers.rabbitmq.connection import connect
from dashboard.core.cluster_config import load_clusters
from tests.conftest import KAFKA, MGMT, free_port

SECRET = "pw-never-shown-7f3a"


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def write_clusters(monkeypatch, tmp_path, body: str) -> None:
    path = tmp_path / "clusters.toml"
    path.write_text('[[cluster]]\nslug = "r"\nkind = "rabbitmq"\n' + body + "\n")
    monkeypatch.setenv("MQB_CLUSTERS_FILE", str(path))


def test_a_file_lists_every_node_and_the_single_form_still_works(monkeypatch, tmp_path):
    write_clusters(
        monkeypatch,
        tmp_path,
        'amqp_url = ["amqp://bob@r1:5672/prod", "amqp://r2:5672/prod", "amqps://r3/prod"]\n'
        'management_url = ["http://r1:15672", "https://r3:15671/"]',
    )
    (rabbit,) = load_clusters()
    assert rabbit.amqp_url == "amqp://r1:5672/prod" and rabbit.username == "bob"
    assert rabbit.amqp_failover_urls == ("amqp://r2:5672/prod", "amqps://r3/prod")
    assert rabbit.amqp_urls == ("amqp://r1:5672/prod", "amqp://r2:5672/prod", "amqps://r3/prod")
    assert rabbit.management_urls == ("http://r1:15672", "https://r3:15671/")
    assert rabbit.address == "http://r1:15672"
    write_clusters(
        monkeypatch, tmp_path, 'amqp_url = "amqp://r1/prod"\nmanagement_url = "http://r1:15672"'
    )
    (single,) = load_clusters()
    assert single.amqp_urls == ("amqp://r1/prod",) and single.amqp_failover_urls == ()
    assert single.management_urls == ("http://r1:15672",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('amqp_url = ["amqp://r1/a", "amqp://r2/b"]', "different vhosts"),
        ('amqp_url = ["amqp://r1/", "amqp://u:{SECRET}@r2/"]', "contains a password"),
        ('amqp_url = ["amqp://a@r1/", "amqp://b@r2/"]', "different users"),
        ('amqp_url = ["amqp://r1/", "amqp://r1/"]', "lists a node twice"),
        ('amqp_url = ["http://r1/"]', "must start with amqp or amqps://"),
        ('amqp_url = ["amqp://r1:99999/"]', "invalid host or port"),
        ("amqp_url = []", "a URL or a non-empty array of URLs"),
        ('amqp_url = ["amqp:///x"]', "names no host"),
        ('management_url = ["http://r1:15672", 5]', "a URL or a non-empty array of URLs"),
        ('management_url = ["http://u:{SECRET}@r1:15672"]', "contains credentials"),
        ('management_url = ["amqp://r1:15672"]', "must start with http or https://"),
        ('management_url = ["http://r1:15672/?x=1"]', "query or fragment"),
    ],
)
def test_it_refuses_bad_node_lists_without_repeating_them(monkeypatch, tmp_path, body, message):
    write_clusters(monkeypatch, tmp_path, body.replace("{SECRET}", SECRET))
    with pytest.raises(ConfigError) as info:
        load_clusters()
    assert message in info.value.message
    assert SECRET not in info.value.message


@pytest.mark.rabbitmq
async def test_the_adapter_goes_on_through_the_next_node(
    rabbitmq_config, rabbitmq_vhost, silent_port, caplog
):
    vhost_path = quote(rabbitmq_vhost, safe="")
    refused = free_port()
    config = replace(
        rabbitmq_config,
        amqp_url=f"amqp://127.0.0.1:{silent_port}/{vhost_path}",
        amqp_failover_urls=(
            f"amqp://127.0.0.1:{refused}/{vhost_path}",
            f"amqp://127.0.0.1:5672/{vhost_path}",
        ),
        management_url=f"http://127.0.0.1:{silent_port}",
        management_failover_urls=(f"http://127.0.0.1:{refused}", MGMT),
        timeout=1.5,
    )
    broker = RabbitMQBroker(config)
    caplog.set_level(logging.WARNING)
    try:
        await broker.connect()
        overview = await broker.overview()
        assert overview.nodes and all(n.running for n in overview.nodes)
        warned = [r.getMessage() for r in caplog.records if "trying the next node" in r.message]
        assert any(f"127.0.0.1:{silent_port}" in m for m in warned)  # the silent node timed out
        assert any(f"127.0.0.1:{refused}" in m for m in warned)  # the closed port refused
        caplog.clear()
        # From now on the node that answered is asked first.
        await broker.ping()
        browse = await broker.amqp_connection()
        assert not browse.is_closed
        capture = await connect(config, rabbitmq_vhost)
        await capture.close()
        assert not [r for r in caplog.records if "trying the next node" in r.message]
    finally:
        await broker.close()


@pytest.mark.rabbitmq
async def test_when_every_node_is_down_the_error_says_so_without_secrets(
    rabbitmq_config, silent_port
):
    refused = free_port()
    config = replace(
        rabbitmq_config,
        amqp_url=f"amqp://127.0.0.1:{refused}/",
        amqp_failover_urls=(f"amqp://127.0.0.1:{silent_port}/",),
        management_url=f"http://127.0.0.1:{silent_port}",
        management_failover_urls=(f"http://127.0.0.1:{refused}",),
        password=Secret(SECRET),
        timeout=1.0,
    )
    broker = RabbitMQBroker(config)
    try:
        with pytest.raises(BrokerError) as amqp:
            await broker.connect()
        assert isinstance(amqp.value, BrokerTimeout | BrokerUnavailable)
        assert "none of the 2 AMQP nodes answered" in amqp.value.message
        with pytest.raises(BrokerError) as http:
            await broker.management_get("/api/overview")
        assert isinstance(http.value, BrokerUnavailable)
        assert "none of the 2 management API nodes answered" in http.value.message
        for error in (amqp.value, http.value):
            assert SECRET not in error.message and SECRET not in repr(error)
    finally:
        await broker.close()


@pytest.mark.kafka
async def test_kafka_gets_the_whole_bootstrap_list(kafka_config):
    servers = f"127.0.0.1:{free_port()},{KAFKA}"
    broker = KafkaBroker(replace(kafka_config, bootstrap_servers=servers))
    assert broker.client_config()["bootstrap.servers"] == servers
    await broker.connect()  # the first server is dead: metadata comes from the second
    try:
        overview = await broker.overview()
        assert [n.running for n in overview.nodes] == [True]
    finally:
        await broker.close()
