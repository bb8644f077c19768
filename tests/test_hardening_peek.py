"""Peeks of classic and quorum queues are writes: operator role, writable cluster, audit,
and never on a queue whose delivery limit a peek could push a message over (real RabbitMQ)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from brokers.rabbitmq.delivery_limit import delivery_limit
from brokers.rabbitmq.models import DeliveryLimit
from dashboard.core.connections import close_all
from dashboard.models import AuditEntry
from tests.support.rabbitmq import (
    declare,
    delete_queue,
    drain,
    mgmt,
    publish,
    q,
    queue_info,
    unique,
    wait_for_depth,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]

SLUG = "test-rabbitmq"
API = f"/api/clusters/{SLUG}/rabbitmq"
PAGE = f"/rabbitmq/{SLUG}/queue/messages"
QUORUM = {"x-queue-type": "quorum"}


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config):
    use_clusters(rabbitmq_config)
    yield rabbitmq_config
    await close_all()


@pytest.fixture
def limited(rabbitmq_vhost):
    """The issue's queue: quorum, x-delivery-limit=2, 5 messages."""
    name = unique("sec.qq")
    declare(rabbitmq_vhost, name, {**QUORUM, "x-delivery-limit": 2}, durable=True)
    publish(rabbitmq_vhost, name, *(f"m{i}" for i in range(5)))
    wait_for_depth(rabbitmq_vhost, name, 5)
    yield name
    delete_queue(rabbitmq_vhost, name)


@pytest.fixture
def classic(rabbitmq_vhost):
    name = unique("peek-classic")
    declare(rabbitmq_vhost, name)
    publish(rabbitmq_vhost, name, "one", "two")
    wait_for_depth(rabbitmq_vhost, name, 2)
    yield name
    delete_queue(rabbitmq_vhost, name)


def peek_url(vhost: str, name: str) -> str:
    return f"{API}/queue/peek?vhost={q(vhost)}&name={q(name)}"


async def peek(client, vhost: str, name: str, count: int = 10, confirm: bool = True):
    return await client.post(
        peek_url(vhost, name), {"count": count, "confirm": confirm}, content_type="application/json"
    )


def redelivered(vhost: str, name: str) -> list[bool]:
    return [m["redelivered"] for m in drain(vhost, name)]


# -- where a delivery limit comes from (pure logic) --------------------------------------


def test_it_takes_the_lowest_limit_of_argument_and_policies():
    limit = delivery_limit(
        "quorum",
        {"x-delivery-limit": 7},
        [("policy", {"delivery-limit": 3}), ("operator policy", {"delivery-limit": 5})],
        "3.10.8",
    )
    assert limit == DeliveryLimit(3, "policy")


def test_it_knows_rabbitmq_4s_default_and_its_unlimited():
    assert delivery_limit("quorum", {}, [], "4.1.0") == DeliveryLimit(20, "RabbitMQ 4 default")
    assert delivery_limit("quorum", {}, [], None) == DeliveryLimit(20, "RabbitMQ 4 default")
    assert delivery_limit("quorum", {}, [], "3.13.7") is None
    assert delivery_limit("quorum", {"x-delivery-limit": -1}, [], "4.0.5") is None
    assert delivery_limit("classic", {"x-delivery-limit": 2}, [], "4.0.5") is None
    assert delivery_limit("stream", {}, [], "4.0.5") is None


# -- the scenario -----------------------------------------------------------------


async def test_it_refuses_a_viewers_peek_of_a_limited_quorum_queue(
    async_client, viewer, rabbit, rabbitmq_vhost, limited
):
    await async_client.aforce_login(viewer)
    for _ in range(3):
        response = await peek(async_client, rabbitmq_vhost, limited)
        assert response.status_code == 403, response.content
        assert response.json()["code"] == "forbidden"
    assert queue_info(rabbitmq_vhost, limited)["messages"] == 5
    refused = AuditEntry.objects.filter(
        action="rabbitmq.peek", username=viewer.username, outcome=AuditEntry.Outcome.REFUSED
    )
    assert await refused.acount() == 3
    assert redelivered(rabbitmq_vhost, limited) == [False] * 5


async def test_an_operators_repeated_peeks_never_lose_a_message(
    async_client, operator, rabbit, rabbitmq_vhost, limited
):
    await async_client.aforce_login(operator)
    for _ in range(4):
        response = await peek(async_client, rabbitmq_vhost, limited)
        assert response.status_code == 409, response.content
        data = response.json()
        assert data["code"] == "delivery_limit"
        assert data["delivery_limit"] == 2 and data["delivery_limit_source"] == "argument"
        assert "nothing was read" in data["error"]
    assert queue_info(rabbitmq_vhost, limited)["messages"] == 5
    entries = [
        e
        async for e in AuditEntry.objects.filter(action="rabbitmq.peek", username=operator.username)
    ]
    assert len(entries) == 4
    assert {e.outcome for e in entries} == {AuditEntry.Outcome.REFUSED}
    assert "delivery limit of 2" in entries[0].detail
    # Never even delivered: nothing was taken from the queue.
    assert redelivered(rabbitmq_vhost, limited) == [False] * 5


async def test_it_refuses_a_limit_that_comes_from_a_fresh_policy(
    async_client, operator, rabbit, rabbitmq_vhost
):
    """The management API shows a new policy only after a statistics interval; the
    vhost's policies are matched at once."""
    name = unique("peek-policy")
    policy = unique("mqb-limit")
    with mgmt() as http:
        http.put(
            f"/api/policies/{q(rabbitmq_vhost)}/{policy}",
            json={
                "pattern": f"^{name}$",
                "definition": {"delivery-limit": 4},
                "apply-to": "queues",
            },
        ).raise_for_status()
        try:
            declare(rabbitmq_vhost, name, QUORUM, durable=True)
            publish(rabbitmq_vhost, name, "x")
            await async_client.aforce_login(operator)
            response = await peek(async_client, rabbitmq_vhost, name)
            assert response.status_code == 409
            assert response.json()["delivery_limit"] == 4
            assert response.json()["delivery_limit_source"] == "policy"
            assert redelivered(rabbitmq_vhost, name) == [False]
        finally:
            delete_queue(rabbitmq_vhost, name)
            http.delete(f"/api/policies/{q(rabbitmq_vhost)}/{policy}")


async def test_a_quorum_queue_without_a_limit_is_peeked_on_rabbitmq_3(
    async_client, operator, rabbit, rabbitmq_vhost
):
    name = unique("peek-qq")
    declare(rabbitmq_vhost, name, QUORUM, durable=True)
    try:
        publish(rabbitmq_vhost, name, "a", "b")
        wait_for_depth(rabbitmq_vhost, name, 2)
        await async_client.aforce_login(operator)
        response = await peek(async_client, rabbitmq_vhost, name)
        assert response.status_code == 200, response.content
        assert [m["body"] for m in response.json()["messages"]] == ["a", "b"]
        assert len(drain(rabbitmq_vhost, name)) == 2
    finally:
        delete_queue(rabbitmq_vhost, name)


# -- roles, read-only and protected clusters ----------------------------------------------


async def test_viewers_cannot_peek_a_classic_queue_anywhere(
    async_client, viewer, rabbit, rabbitmq_vhost, classic
):
    await async_client.aforce_login(viewer)
    assert (await peek(async_client, rabbitmq_vhost, classic)).status_code == 403
    form = {"vhost": rabbitmq_vhost, "name": classic, "count": "2", "confirm": "1"}
    assert (await async_client.post(PAGE, form)).status_code == 403
    page = (await async_client.get(PAGE, {"vhost": rabbitmq_vhost, "name": classic})).content
    assert b'id="peek-form"' not in page and b"needs the operator role" in page
    queue_page = await async_client.get(
        f"/rabbitmq/{SLUG}/queue", {"vhost": rabbitmq_vhost, "name": classic}
    )
    assert b"Peek at messages" not in queue_page.content
    assert b"needs the operator role" in queue_page.content
    assert redelivered(rabbitmq_vhost, classic) == [False, False]


async def test_an_operator_peek_is_audited(async_client, operator, rabbit, rabbitmq_vhost, classic):
    await async_client.aforce_login(operator)
    page = (await async_client.get(PAGE, {"vhost": rabbitmq_vhost, "name": classic})).content
    assert b'id="peek-form"' in page
    response = await peek(async_client, rabbitmq_vhost, classic)
    assert response.status_code == 200
    entry = await AuditEntry.objects.aget(action="rabbitmq.peek", username=operator.username)
    assert entry.outcome == AuditEntry.Outcome.OK and entry.parameters["read"] == 2
    assert redelivered(rabbitmq_vhost, classic) == [True, True]


async def test_viewers_may_read_a_stream(async_client, viewer, rabbit, rabbitmq_vhost):
    name = unique("peek-stream")
    declare(rabbitmq_vhost, name, {"x-queue-type": "stream"}, durable=True)
    try:
        publish(rabbitmq_vhost, name, "s1", "s2")
        await async_client.aforce_login(viewer)
        response = await peek(async_client, rabbitmq_vhost, name, confirm=False)
        assert response.status_code == 200, response.content
        data = response.json()
        assert not data["destructive"]
        assert [m["body"] for m in data["messages"]] == ["s1", "s2"]
    finally:
        delete_queue(rabbitmq_vhost, name)


async def test_a_read_only_cluster_refuses_peeks(
    async_client, operator, use_clusters, rabbitmq_config, rabbitmq_vhost, classic
):
    use_clusters(replace(rabbitmq_config, read_only=True))
    try:
        await async_client.aforce_login(operator)
        response = await peek(async_client, rabbitmq_vhost, classic)
        assert response.status_code == 409, response.content
        assert "read-only" in response.json()["error"]
        page = (await async_client.get(PAGE, {"vhost": rabbitmq_vhost, "name": classic})).content
        assert b'id="peek-form"' not in page and b"read-only in mqboard" in page
    finally:
        await close_all()
    entry = await AuditEntry.objects.aget(action="rabbitmq.peek", username=operator.username)
    assert entry.outcome == AuditEntry.Outcome.REFUSED and "read-only" in entry.detail
    assert redelivered(rabbitmq_vhost, classic) == [False, False]


async def test_a_protected_cluster_asks_for_confirmation_every_time(
    async_client, operator, use_clusters, rabbitmq_config, rabbitmq_vhost, classic
):
    use_clusters(replace(rabbitmq_config, protected=True))
    try:
        await async_client.aforce_login(operator)
        assert (await peek(async_client, rabbitmq_vhost, classic)).status_code == 200
        again = await peek(async_client, rabbitmq_vhost, classic, confirm=False)
        assert again.status_code == 409 and again.json()["code"] == "confirmation_required"
    finally:
        await close_all()
