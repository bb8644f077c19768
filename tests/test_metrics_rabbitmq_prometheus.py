"""RabbitMQ sampling from the Prometheus plugin: the same queues, numbers, rates and
properties as the management API's queue list, on a real broker.

The broker is the suite's (AMQP 5672, management 15672, Prometheus 15692) unless
``MQB_TEST_PROMETHEUS_AMQP_URL``, ``MQB_TEST_PROMETHEUS_MANAGEMENT_URL`` and
``MQB_TEST_RABBITMQ_PROMETHEUS_URL`` name another. ``ops/rabbitmq.sh`` enables
``rabbitmq_prometheus`` when it starts the node: an endpoint that does not answer
fails the broker tests (a node started before the plugin was added needs a restart).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import aio_pika
import httpx
import pytest

from brokers.base import ClusterConfig, Secret
from brokers.rabbitmq import RabbitMQBroker
from brokers.rabbitmq.metrics import sweep_queues
from brokers.rabbitmq.prometheus import CounterRates, attributes_of, parse, queue_stats
from brokers.rabbitmq.sampler import RabbitMQSampler

AMQP = os.environ.get("MQB_TEST_PROMETHEUS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
MGMT = os.environ.get("MQB_TEST_PROMETHEUS_MANAGEMENT_URL", "http://127.0.0.1:15672")
PROMETHEUS = os.environ.get("MQB_TEST_RABBITMQ_PROMETHEUS_URL", "http://127.0.0.1:15692")
GUEST = ("guest", "guest")


def test_it_parses_gauges_and_counter_series_with_escaped_labels():
    text = "\n".join(
        (
            "# TYPE rabbitmq_detailed_queue_messages_ready gauge",
            'rabbitmq_detailed_queue_messages_ready{vhost="/",queue="plain"} 4',
            'rabbitmq_detailed_queue_messages_ready{vhost="v",queue="a \\"quoted\\",name"} 2',
            'rabbitmq_detailed_queue_messages_unacked{vhost="/",queue="plain"} 1',
            'rabbitmq_detailed_queue_messages{vhost="/",queue="plain"} 5',
            'rabbitmq_detailed_queue_consumers{vhost="/",queue="plain"} 3',
            'rabbitmq_detailed_channel_messages_acked_total{channel="<0.1.0>",vhost="/",'
            'queue="plain"} 7',
            'rabbitmq_detailed_queue_messages_published_total{channel="<0.1.0>",'
            'queue_vhost="/",queue="plain",exchange_vhost="/",exchange=""} 9',
            'rabbitmq_build_info{rabbitmq_version="3.10.8"} 1',
        )
    )
    scrape = parse(text)
    # The total is not taken from the text: it is ready + unacked.
    assert scrape.gauges[("/", "plain")] == [4, 1, None, 3]
    plain = next(q for q in queue_stats(scrape, None, {}, {}) if q.name == "plain")
    assert (plain.messages, plain.ready, plain.unacked, plain.consumers) == (5, 4, 1, 3)
    assert scrape.gauges[("v", 'a "quoted",name')] == [2, None, None, None]
    assert sorted((series[0], series[2], series[3]) for series in scrape.counters) == [
        ("channel_messages_acked_total", "/", "plain"),
        ("queue_messages_published_total", "/", "plain"),
    ]


def test_rates_are_the_growth_of_each_series_between_two_samples():
    rates = CounterRates()
    acked = ("channel_messages_acked_total", 'channel="a"', "/", "q")
    gone = ("channel_messages_delivered_ack_total", 'channel="b"', "/", "q")
    assert rates.rates({acked: 10.0, gone: 50.0}, now=100.0) is None, "nothing to compare yet"
    later = ("queue_messages_published_total", 'channel="c"', "/", "q")
    # Channel b closed (its series is gone: it adds nothing); channel c is new.
    found = rates.rates({acked: 30.0, later: 40.0}, now=110.0)
    assert found == {("/", "q"): [4.0, 0.0, 2.0]}


def test_properties_come_from_arguments_and_the_policy_of_highest_priority():
    definitions = {
        "policies": [
            {"name": "low", "pattern": "^orders", "apply-to": "queues", "priority": 0,
             "definition": {"dead-letter-exchange": "low-dlx"}},
            {"name": "high", "pattern": "^orders\\.eu", "apply-to": "all", "priority": 5,
             "definition": {"dead-letter-exchange": "eu-dlx"}},
            {"name": "exchanges-only", "pattern": ".*", "apply-to": "exchanges", "priority": 9,
             "definition": {}},
        ],
        "queues": [
            {"name": "orders.us", "arguments": {}},
            {"name": "orders.eu", "arguments": {"x-queue-type": "quorum"}},
            {"name": "orders.own", "arguments": {"x-dead-letter-exchange": "mine"}},
            {"name": "other", "arguments": {}},
        ],
    }  # fmt: skip
    found = attributes_of(definitions, "v")
    assert found[("v", "orders.us")] == {"policy": "low", "dlx": "low-dlx", "dlx_source": "policy"}
    assert found[("v", "orders.eu")] == {
        "type": "quorum", "policy": "high", "dlx": "eu-dlx", "dlx_source": "policy"
    }  # fmt: skip
    assert found[("v", "orders.own")] == {"policy": "low", "dlx": "mine", "dlx_source": "argument"}
    assert ("v", "other") not in found, "a plain classic queue has no properties"


# -- on a real broker ------------------------------------------------------------------


def _answers(url: str) -> bool:
    try:
        return httpx.get(url + "/metrics", timeout=3).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def prom_vhost() -> Iterator[str]:
    if not _answers(PROMETHEUS):
        pytest.fail(
            f"no rabbitmq_prometheus endpoint at {PROMETHEUS}: restart the broker"
            " (make services-down; make services) so ops/rabbitmq.sh enables it"
        )
    vhost = f"mqb-test-prom-{uuid.uuid4().hex[:8]}"
    path = quote(vhost, safe="")
    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=30) as http:
        http.put(f"/api/vhosts/{path}").raise_for_status()
        http.put(
            f"/api/permissions/{path}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
        http.put(
            f"/api/policies/{path}/dead-letters",
            json={"pattern": "^pol-", "apply-to": "queues", "definition": {
                "dead-letter-exchange": "policy-dlx"}},
        ).raise_for_status()  # fmt: skip
        try:
            yield vhost
        finally:
            http.delete(f"/api/vhosts/{path}")


@pytest.fixture
async def prom_broker() -> AsyncIterator[tuple[RabbitMQBroker, ClusterConfig]]:
    config = ClusterConfig(
        slug="test-prometheus",
        kind="rabbitmq",
        amqp_url=f"amqp://{urlsplit(AMQP).netloc.rpartition('@')[2]}/",
        management_url=MGMT,
        username="guest",
        password=Secret("guest"),
        timeout=30.0,
        prometheus_urls=(PROMETHEUS,),
    )
    broker = RabbitMQBroker(config)
    yield broker, config
    await broker.close()


async def _connect(vhost: str) -> aio_pika.abc.AbstractRobustConnection:
    return await aio_pika.connect_robust(AMQP.rsplit("/", 1)[0] + "/" + quote(vhost, safe=""))


async def test_it_samples_the_same_queues_as_the_management_api(prom_vhost, prom_broker):
    broker, config = prom_broker
    connection = await _connect(prom_vhost)
    try:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue("plain")
        await channel.declare_queue("own-dlx", arguments={"x-dead-letter-exchange": "mine"})
        await channel.declare_queue("pol-1")
        await channel.declare_queue("quorum-1", durable=True, arguments={"x-queue-type": "quorum"})
        for _ in range(3):
            await channel.default_exchange.publish(aio_pika.Message(b"x"), "plain")
        consuming = await connection.channel()
        await consuming.set_qos(prefetch_count=1)
        held: list[Any] = []

        async def hold(message: Any) -> None:
            held.append(message)  # not acked yet: one message stays unacknowledged

        await (await consuming.get_queue("plain")).consume(hold)

        sampler = RabbitMQSampler(config, vhosts=[prom_vhost])

        async def sampled() -> dict[str, Any]:
            deadline = time.monotonic() + 30
            while True:
                sample = await sampler.full(broker)
                found = {p.entity.split("/", 1)[1]: p for p in sample.points}
                plain = found.get("plain")
                if (
                    plain is not None
                    and plain.values[:3] == (3, 2, 1)
                    and plain.values[6] == 1
                    and set(found) == {"plain", "own-dlx", "pol-1", "quorum-1"}
                ):
                    return found
                assert time.monotonic() < deadline, f"not every queue, or plain not 2 + 1: {found}"
                await asyncio.sleep(0.5)

        found = await sampled()
        deadline = time.monotonic() + 30
        while True:  # the management API shows a policy once its statistics caught up
            management = await sweep_queues(broker, vhost=prom_vhost)
            by_name = {q.name: q for q in management.queues}
            if (by_name["pol-1"].attributes or {}).get("policy") or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        for name in ("own-dlx", "pol-1", "quorum-1"):
            expected = dict(by_name[name].attributes or {})
            expected.pop("state", None)  # not known from Prometheus or definitions
            assert (found[name].extra or {}) == expected, name
        assert found["pol-1"].extra == {
            "policy": "dead-letters", "dlx": "policy-dlx", "dlx_source": "policy"
        }  # fmt: skip

        for _ in range(20):
            await channel.default_exchange.publish(aio_pika.Message(b"x"), "own-dlx")
        sample = await sampler.full(broker)
        own = next(p for p in sample.points if p.entity.endswith("/own-dlx"))
        publish_rate = own.values[3]
        assert publish_rate is not None and publish_rate > 0, own
        for message in held:
            await message.ack()
    finally:
        await connection.close()
