"""One contract, run against both real brokers: every adapter behaves the same way."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from brokers.base import (
    Broker,
    BrokerAuthError,
    BrokerError,
    BrokerUnavailable,
    ClusterConfig,
    Overview,
    Secret,
)
from brokers.registry import make_broker
from tests.conftest import broken, free_port


class BrokerContract:
    """Subclasses provide ``config`` (a healthy cluster) and ``down_config`` (nothing listening)."""

    @pytest.fixture
    def config(self) -> ClusterConfig:
        raise NotImplementedError

    @pytest.fixture
    def down_config(self, config: ClusterConfig) -> ClusterConfig:
        raise NotImplementedError

    async def test_it_implements_the_protocol(self, config):
        assert isinstance(make_broker(config), Broker)

    async def test_it_connects_pings_and_closes(self, config):
        broker = make_broker(config)
        await broker.connect()
        await broker.ping()
        await broker.close()
        await broker.close()  # closing twice is harmless

    async def test_it_describes_the_cluster(self, config):
        async with make_broker(config) as broker:
            overview = await broker.overview()
        assert isinstance(overview, Overview)
        assert overview.kind == config.kind
        assert overview.version and overview.version[0].isdigit()
        assert overview.nodes and all(n.name for n in overview.nodes)
        assert datetime.now(UTC) - overview.checked_at < timedelta(seconds=10)

    async def test_it_reports_a_down_broker_quickly_and_clearly(self, down_config):
        started = time.monotonic()
        with pytest.raises(BrokerError) as info:
            async with make_broker(down_config) as broker:
                await broker.overview()
        assert time.monotonic() - started < down_config.timeout + 2
        assert isinstance(info.value, BrokerUnavailable | BrokerError)
        assert info.value.message
        assert "Traceback" not in info.value.message

    async def test_results_are_frozen(self, config):
        async with make_broker(config) as broker:
            overview = await broker.overview()
        with pytest.raises(AttributeError):
            overview.version = "0"  # type: ignore[misc]


@pytest.mark.rabbitmq
class TestRabbitMQContract(BrokerContract):
    @pytest.fixture
    def config(self, rabbitmq_config):
        return rabbitmq_config

    @pytest.fixture
    def down_config(self, config):
        port = free_port()
        return broken(
            config,
            amqp_url=f"amqp://127.0.0.1:{port}/",
            management_url=f"http://127.0.0.1:{port}",
            timeout=2.0,
        )

    async def test_it_counts_queues(self, config):
        async with make_broker(config) as broker:
            overview = await broker.overview()
        assert overview.queues is not None and overview.exchanges is not None
        assert overview.topics is None  # not applicable, not zero

    async def test_it_names_a_wrong_password(self, config):
        with pytest.raises(BrokerAuthError) as info:
            async with make_broker(broken(config, password=Secret("wrong"))) as broker:
                await broker.overview()
        assert "wrong username or password" in info.value.message
        assert "wrong" not in info.value.message.replace("wrong username", "")

    async def test_it_names_a_wrong_management_port(self, config):
        # The AMQP port speaks AMQP, not HTTP.
        bad = broken(config, management_url="http://127.0.0.1:5672")
        with pytest.raises(BrokerError) as info:
            async with make_broker(bad) as broker:
                await broker.overview()
        assert "management" in info.value.message


@pytest.mark.kafka
class TestKafkaContract(BrokerContract):
    @pytest.fixture
    def config(self, kafka_config):
        return kafka_config

    @pytest.fixture
    def down_config(self, config):
        return broken(config, bootstrap_servers=f"127.0.0.1:{free_port()}", timeout=2.0)

    async def test_it_counts_topics(self, config):
        async with make_broker(config) as broker:
            overview = await broker.overview()
        assert overview.topics is not None and overview.partitions is not None
        assert overview.consumer_groups is not None
        assert overview.cluster_name
        assert any(n.is_controller for n in overview.nodes)
        assert overview.queues is None

    async def test_it_says_a_rabbitmq_port_is_not_kafka(self, config):
        started = time.monotonic()
        with pytest.raises(BrokerError) as info:
            async with make_broker(broken(config, bootstrap_servers="127.0.0.1:5672")) as b:
                await b.overview()
        assert time.monotonic() - started < 6
        assert "not like a Kafka broker" in info.value.message

    async def test_it_rejects_an_unknown_client_option(self, config):
        bad = broken(config, client_options={"no.such.option": "1"})
        with pytest.raises(BrokerError) as info:
            async with make_broker(bad):
                pass
        assert "no.such.option" in info.value.message


async def _eventually(check, within: float = 15.0):
    """Management statistics lag the broker by seconds: poll, never sleep blindly."""
    import asyncio

    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(0.5)


@pytest.mark.rabbitmq
async def test_rabbitmq_finds_dead_letter_queues_by_name(
    rabbitmq_config, rabbitmq_vhost, unique_name
):
    import aio_pika

    connection = await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=rabbitmq_vhost
    )
    async with connection:
        channel = await connection.channel()
        # A name of its own: other tests manage and capture DLQs in this vhost.
        dlq = f"{unique_name}.dlq"
        queue = await channel.declare_queue(dlq, durable=True)
        await channel.declare_queue(unique_name, durable=True)  # not a DLQ by name
        await queue.purge()
        for i in range(3):
            await channel.default_exchange.publish(
                aio_pika.Message(body=f"m{i}".encode()), routing_key=dlq
            )

    async def found():
        async with make_broker(rabbitmq_config) as broker:
            dlqs = await broker.dead_letter_queues(limit=500, vhost=rabbitmq_vhost)
        mine = [d for d in dlqs if d.name.startswith(unique_name)]
        return mine if mine and mine[0].depth == 3 else None

    mine = await _eventually(found, within=40)
    assert mine and [(d.name, d.depth) for d in mine] == [(dlq, 3)]


@pytest.mark.kafka
async def test_kafka_finds_dead_letter_topics_by_name(kafka_config, unique_name):
    import asyncio

    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    admin = AdminClient({"bootstrap.servers": kafka_config.bootstrap_servers})
    dlq, plain = f"{unique_name}.DLT", f"{unique_name}-plain"
    for future in admin.create_topics(
        [NewTopic(dlq, num_partitions=2), NewTopic(plain, num_partitions=1)]
    ).values():
        future.result(10)
    try:
        producer = Producer({"bootstrap.servers": kafka_config.bootstrap_servers})
        for i in range(5):
            producer.produce(dlq, value=f"v{i}".encode(), partition=i % 2)
        assert producer.flush(10) == 0
        async with make_broker(kafka_config) as broker:
            dlqs = await broker.dead_letter_queues(limit=1000)
        by_name = {d.name: d.depth for d in dlqs}
        assert by_name[dlq] == 5
        assert plain not in by_name
    finally:
        for future in admin.delete_topics([dlq, plain]).values():
            await asyncio.wrap_future(future)
