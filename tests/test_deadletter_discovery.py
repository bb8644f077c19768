"""DLQ discovery on the real brokers: dead-letter exchanges by argument and policy, names, depth."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from brokers.kafka import KafkaBroker
from brokers.kafka.deadletters.discovery import discover_kafka
from brokers.rabbitmq import RabbitMQBroker
from brokers.rabbitmq.deadletters.discovery import discover_rabbitmq
from brokers.rabbitmq.routes import topic_matches
from tests.support import deadletters as h


def test_it_matches_topic_patterns_like_rabbitmq():
    assert topic_matches("dead.#", "dead")
    assert topic_matches("dead.#", "dead.orders.eu")
    assert topic_matches("*.orders", "dead.orders")
    assert not topic_matches("*.orders", "orders")
    assert not topic_matches("dead.*", "dead.orders.eu")


@pytest.fixture
def topology(rabbitmq_vhost):
    """Queues, exchanges and a policy with unique names in the run's test vhost."""
    b = h.unique("disc")
    v = h.q(rabbitmq_vhost)
    with h.mgmt() as http:

        def put(path: str, body: dict[str, Any]) -> None:
            http.put(path, json=body).raise_for_status()

        def queue(name: str, arguments: dict[str, Any] | None = None) -> None:
            put(f"/api/queues/{v}/{h.q(name)}", {"durable": False, "arguments": arguments or {}})

        def exchange(name: str, kind: str) -> None:
            put(f"/api/exchanges/{v}/{h.q(name)}", {"type": kind, "durable": False})

        def bind(source: str, kind: str, destination: str, key: str) -> None:
            http.post(
                f"/api/bindings/{v}/e/{h.q(source)}/{kind}/{h.q(destination)}",
                json={"routing_key": key},
            ).raise_for_status()

        exchange(f"{b}-dlx", "direct")
        queue(f"{b}-dlq1")
        queue(f"{b}-other")
        bind(f"{b}-dlx", "q", f"{b}-dlq1", "k1")
        bind(f"{b}-dlx", "q", f"{b}-other", "k2")
        queue(f"{b}-a", {"x-dead-letter-exchange": f"{b}-dlx", "x-dead-letter-routing-key": "k1"})

        exchange(f"{b}-fan", "fanout")
        queue(f"{b}-parking")
        bind(f"{b}-fan", "q", f"{b}-parking", "")
        queue(f"{b}-p")
        queue(f"{b}-pa", {"x-dead-letter-exchange": f"{b}-dlx", "x-dead-letter-routing-key": "k2"})
        put(
            f"/api/policies/{v}/{b}-policy",
            {"pattern": f"^{b}-pa?$", "definition": {"dead-letter-exchange": f"{b}-fan"},
             "apply-to": "queues"},
        )  # fmt: skip

        exchange(f"{b}-topic", "topic")
        exchange(f"{b}-hop", "fanout")
        queue(f"{b}-hopped")
        bind(f"{b}-topic", "e", f"{b}-hop", "dead.#")
        bind(f"{b}-hop", "q", f"{b}-hopped", "")
        queue(f"{b}-t", {"x-dead-letter-exchange": f"{b}-topic",
                         "x-dead-letter-routing-key": "dead.orders"})  # fmt: skip
        queue(f"{b}-own", {"x-dead-letter-exchange": f"{b}-dlx"})
        queue(f"{b}-gone", {"x-dead-letter-exchange": f"{b}-missing"})
        queue(f"{b}-default-target")
        queue(f"{b}-d", {"x-dead-letter-exchange": "",
                         "x-dead-letter-routing-key": f"{b}-default-target"})  # fmt: skip

        for name in (f"{b}.dlq", f"{b}-DLQ", f"{b}_dlq", f"{b}.DLT", f"{b}-dlqueue"):
            queue(name)
        yield b
        http.delete(f"/api/policies/{v}/{b}-policy")


@pytest.mark.rabbitmq
async def test_it_finds_rabbitmq_dlqs_by_dead_letter_exchange_and_by_name(
    rabbitmq_config, rabbitmq_vhost, topology
):
    b = topology
    await h.publish_to(rabbitmq_vhost, f"{b}.dlq", [b"1", b"2"])
    broker = RabbitMQBroker(rabbitmq_config)
    try:
        # The policy takes a moment to apply; depths lag up to 5 s.
        deadline = time.monotonic() + 15
        while True:
            found = await discover_rabbitmq(broker, vhost=rabbitmq_vhost)
            by_name = {d.name: d for d in found.dlqs if d.name.startswith(b)}
            ready = f"{b}-parking" in by_name and by_name.get(f"{b}.dlq")
            if (ready and ready.depth == 2) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await broker.close()

    assert found.complete
    dlq1 = by_name[f"{b}-dlq1"]
    assert dlq1.found_by == ("dead-letter exchange",)
    assert [(s.name, s.via, s.exchange, s.routing_key) for s in dlq1.sources] == [
        (f"{b}-a", "argument", f"{b}-dlx", "k1"),
        (f"{b}-own", "argument", f"{b}-dlx", None),
    ]
    assert "own routing key" in dlq1.sources[1].note
    # The argument wins over the policy that also matches -pa.
    other = by_name[f"{b}-other"]
    assert {(s.name, s.via) for s in other.sources} == {
        (f"{b}-pa", "argument"),
        (f"{b}-own", "argument"),
    }
    parking = by_name[f"{b}-parking"]
    assert [(s.name, s.via, s.exchange) for s in parking.sources] == [
        (f"{b}-p", "policy", f"{b}-fan")
    ]
    assert [s.name for s in by_name[f"{b}-hopped"].sources] == [f"{b}-t"]
    assert [s.name for s in by_name[f"{b}-default-target"].sources] == [f"{b}-d"]
    for name in (f"{b}.dlq", f"{b}-DLQ", f"{b}_dlq", f"{b}.DLT"):
        assert by_name[name].found_by == ("name",), name
        assert by_name[name].queue_type == "classic"
    assert f"{b}-dlqueue" not in by_name
    assert f"{b}-a" not in by_name
    assert by_name[f"{b}.dlq"].depth == 2
    assert any(f"{b}-missing" in note for note in found.notes)


@pytest.mark.rabbitmq
async def test_it_reads_the_queue_list_in_pages_up_to_the_scan_limit(
    rabbitmq_config, rabbitmq_vhost, topology, monkeypatch
):
    from brokers.rabbitmq.deadletters import discovery

    monkeypatch.setattr(discovery, "PAGE_SIZE", 5)
    broker = RabbitMQBroker(rabbitmq_config)
    try:
        whole = await discover_rabbitmq(broker, vhost=rabbitmq_vhost)
        cut = await discover_rabbitmq(broker, vhost=rabbitmq_vhost, scan_limit=5)
    finally:
        await broker.close()
    assert whole.complete and whole.scanned > 5
    assert {d.name for d in whole.dlqs} >= {f"{topology}-parking", f"{topology}.dlq"}
    assert not cut.complete and cut.scanned == 5


@pytest.mark.kafka
async def test_it_finds_kafka_dlq_topics_by_name_and_configuration(kafka_config):
    base = h.kafka_name("")
    topics = [f"{base}", f"{base}.DLT", f"{base}-dlq", f"{base}-parking", f"{base}-dlqs"]
    for topic in topics:
        await asyncio.to_thread(h.create_topic, topic, 2)
    broker = KafkaBroker(kafka_config)
    try:
        await asyncio.to_thread(h.produce, f"{base}-dlq", [(None, b"x", [])] * 3)
        await broker.connect()
        found = await discover_kafka(broker, configured=[f"{base}-parking", f"{base}-absent"])
    finally:
        await broker.close()
        await asyncio.to_thread(h.delete_topics, *topics)

    by_name = {d.name: d for d in found.dlqs if d.name.startswith(base)}
    assert set(by_name) == {f"{base}.DLT", f"{base}-dlq", f"{base}-parking"}
    assert by_name[f"{base}.DLT"].found_by == ("name",)
    assert [s.name for s in by_name[f"{base}.DLT"].sources] == [base]
    assert by_name[f"{base}-parking"].found_by == ("configured",)
    assert by_name[f"{base}-dlq"].depth == 3
    assert by_name[f"{base}.DLT"].depth == 0
    assert any(f"{base}-absent" in note for note in found.notes)
