"""The RabbitMQ pages: queue list, queue, peek, purge, publish, exchanges and vhosts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from django.test import AsyncClient

from dashboard.core.connections import close_all
from dashboard.models import AuditEntry
from tests.support.rabbitmq import (
    declare,
    declare_exchange,
    delete_queue,
    drain,
    mgmt,
    publish,
    q,
    unique,
    wait_for_depth,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config):
    """The services see only the test RabbitMQ; its connections close after the test."""
    use_clusters(rabbitmq_config)
    yield rabbitmq_config
    await close_all()


@pytest.fixture
def queue(rabbitmq_vhost):
    name = unique("view")
    declare(rabbitmq_vhost, name)
    publish(rabbitmq_vhost, name, '{"order": 1}', '{"order": 2}', "plain text")
    yield name
    delete_queue(rabbitmq_vhost, name)


async def login(client: AsyncClient, user: Any) -> AsyncClient:
    await client.aforce_login(user)
    return client


async def test_the_nav_entry_leads_to_the_only_clusters_queues(async_client, viewer, rabbit):
    client = await login(async_client, viewer)
    response = await client.get("/rabbitmq/")
    assert response.status_code == 302
    assert response["Location"] == "/rabbitmq/test-rabbitmq/"


async def test_it_lists_queues_sorted_and_filtered(
    async_client, viewer, rabbit, rabbitmq_vhost, queue
):
    wait_for_depth(rabbitmq_vhost, queue, 3)
    client = await login(async_client, viewer)
    response = await client.get(
        "/rabbitmq/test-rabbitmq/",
        {"vhost": rabbitmq_vhost, "name": queue, "sort": "depth", "reverse": "1"},
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f"?vhost={q(rabbitmq_vhost)}&amp;name={q(queue)}" in page
    assert "<b>1</b> matching" in page
    assert "consumers and rates are not fetched" in page


async def test_it_says_how_a_type_filter_was_applied(async_client, viewer, rabbit, rabbitmq_vhost):
    client = await login(async_client, viewer)
    response = await client.get(
        "/rabbitmq/test-rabbitmq/", {"vhost": rabbitmq_vhost, "type": "quorum"}
    )
    assert response.status_code == 200
    assert "applied by mqboard, not RabbitMQ" in response.content.decode()


async def test_a_bad_regex_is_a_clear_400(async_client, viewer, rabbit):
    client = await login(async_client, viewer)
    response = await client.get("/rabbitmq/test-rabbitmq/", {"name": "(", "regex": "1"})
    assert response.status_code == 400
    assert "not a valid regular expression" in response.content.decode()


async def test_a_page_past_the_end_offers_the_last_page(
    async_client, viewer, rabbit, rabbitmq_vhost, queue
):
    client = await login(async_client, viewer)
    response = await client.get(
        "/rabbitmq/test-rabbitmq/", {"vhost": rabbitmq_vhost, "name": queue, "page": "50"}
    )
    assert response.status_code == 200
    assert "past the end" in response.content.decode()
    assert "Go to the last page" in response.content.decode()


async def test_it_shows_a_queue(async_client, viewer, rabbit, rabbitmq_vhost, queue):
    client = await login(async_client, viewer)
    response = await client.get(
        "/rabbitmq/test-rabbitmq/queue", {"vhost": rabbitmq_vhost, "name": queue}
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert queue in page and "Dead-lettering" in page and "Consumers (0)" in page
    assert "Purge queue" not in page  # viewers see no write forms


async def test_a_queue_deleted_after_the_list_is_a_404_page(
    async_client, viewer, rabbit, rabbitmq_vhost
):
    client = await login(async_client, viewer)
    response = await client.get(
        "/rabbitmq/test-rabbitmq/queue", {"vhost": rabbitmq_vhost, "name": unique("gone")}
    )
    assert response.status_code == 404
    assert "does not exist" in response.content.decode()


async def test_the_first_peek_needs_a_confirmation(
    async_client, operator, rabbit, rabbitmq_vhost, queue
):
    client = await login(async_client, operator)
    url = "/rabbitmq/test-rabbitmq/queue/messages"
    form = await client.get(url, {"vhost": rabbitmq_vhost, "name": queue})
    assert "no way to read a classic queue without taking the messages" in form.content.decode()
    assert 'name="confirm"' in form.content.decode()
    refused = await client.post(
        url, {"vhost": rabbitmq_vhost, "name": queue, "count": "2"}, follow=True
    )
    assert refused.redirect_chain[0][1] == 303  # answered with a redirect, shown with its status
    assert refused.status_code == 400
    assert "confirm first" in refused.content.decode()
    peeked = await client.post(
        url, {"vhost": rabbitmq_vhost, "name": queue, "count": "2", "confirm": "1"}, follow=True
    )
    assert peeked.status_code == 200
    page = peeked.content.decode()
    assert "&quot;order&quot;: 1" in page and "&quot;order&quot;: 2" in page
    assert "plain text" not in page  # only two asked for
    again = await client.post(
        url, {"vhost": rabbitmq_vhost, "name": queue, "count": "3"}, follow=True
    )
    assert again.status_code == 200, "the confirmation is remembered for this queue"
    assert "plain text" in again.content.decode()
    assert "redelivered" in again.content.decode()
    peeks = AuditEntry.objects.filter(action="rabbitmq.peek", username=operator.username)
    assert await peeks.acount() == 2
    assert len(drain(rabbitmq_vhost, queue)) == 3  # nothing lost


async def test_viewers_cannot_purge_or_publish(async_client, viewer, rabbit, rabbitmq_vhost, queue):
    client = await login(async_client, viewer)
    purge = await client.post(
        "/rabbitmq/test-rabbitmq/queue/purge", {"vhost": rabbitmq_vhost, "name": queue}
    )
    assert purge.status_code == 403
    published = await client.post(
        "/rabbitmq/test-rabbitmq/publish",
        {"vhost": rabbitmq_vhost, "exchange": "", "routing_key": queue, "body": "x"},
    )
    assert published.status_code == 403
    assert len(drain(rabbitmq_vhost, queue)) == 3
    refused = AuditEntry.objects.filter(outcome="refused", username=viewer.username)
    assert await refused.acount() == 2


async def test_a_protected_cluster_needs_the_queue_name_typed_to_purge(
    async_client, operator, use_clusters, rabbitmq_config, rabbitmq_vhost, queue
):
    use_clusters(replace(rabbitmq_config, protected=True))
    try:
        client = await login(async_client, operator)
        detail = await client.get(
            "/rabbitmq/test-rabbitmq/queue", {"vhost": rabbitmq_vhost, "name": queue}
        )
        assert 'name="confirm_name"' in detail.content.decode()
        url = "/rabbitmq/test-rabbitmq/queue/purge"
        wrong = await client.post(
            url, {"vhost": rabbitmq_vhost, "name": queue, "confirm_name": "not it"}
        )
        assert wrong.status_code == 302
        followed = await client.get(wrong["Location"])
        assert "type the queue name exactly" in followed.content.decode()
        wait_for_depth(rabbitmq_vhost, queue, 3)
        done = await client.post(
            url, {"vhost": rabbitmq_vhost, "name": queue, "confirm_name": queue}
        )
        assert done.status_code == 302
        followed = await client.get(done["Location"])
        assert "Purged 3 ready message(s)" in followed.content.decode()
        entry = await AuditEntry.objects.filter(action="rabbitmq.purge", outcome="ok").aget()
        assert entry.username == operator.username and entry.client_ip == "127.0.0.1"
        assert entry.parameters["depth_before"] == 3 and entry.parameters["purged"] == 3
        assert await AuditEntry.objects.filter(action="rabbitmq.purge", outcome="refused").aexists()
        assert drain(rabbitmq_vhost, queue) == []
    finally:
        await close_all()


async def test_an_operator_publishes_and_is_told_about_unroutable_messages(
    async_client, operator, rabbit, rabbitmq_vhost, queue
):
    client = await login(async_client, operator)
    url = "/rabbitmq/test-rabbitmq/publish"
    form = await client.get(url, {"vhost": rabbitmq_vhost, "exchange": "", "routing_key": queue})
    assert form.status_code == 200
    sent = await client.post(
        url,
        {
            "vhost": rabbitmq_vhost,
            "exchange": "",
            "routing_key": queue,
            "body": '{"n": 4}',
            "body_encoding": "json",
            "headers": '{"x-try": 2, "blob": {"$bytes": "AAE="}}',
            "delivery_mode": "2",
            "message_id": "published-by-test",
        },
        follow=True,
    )
    assert sent.redirect_chain[0][1] == 303
    assert sent.status_code == 200
    assert "routed and confirmed" in sent.content.decode()
    lonely = unique("lonely")
    declare_exchange(rabbitmq_vhost, lonely, "fanout")
    try:
        dropped = await client.post(
            url,
            {"vhost": rabbitmq_vhost, "exchange": lonely, "routing_key": "k", "body": "x"},
            follow=True,
        )
        assert dropped.status_code == 502
        assert "could not be routed" in dropped.content.decode()
        assert 'value="k"' in dropped.content.decode()  # what was typed is kept
    finally:
        with mgmt() as http:
            http.delete(f"/api/exchanges/{q(rabbitmq_vhost)}/{q(lonely)}")
    bad = await client.post(
        url,
        {"vhost": rabbitmq_vhost, "routing_key": queue, "body": "{", "body_encoding": "json"},
        follow=True,
    )
    assert bad.status_code == 400 and "not valid JSON" in bad.content.decode()
    messages = drain(rabbitmq_vhost, queue)
    last = messages[-1]
    assert last["properties"]["message_id"] == "published-by-test"
    assert last["properties"]["content_type"] == "application/json"
    assert last["properties"]["delivery_mode"] == 2


async def test_it_shows_exchanges_an_exchange_and_vhosts(
    async_client, viewer, rabbit, rabbitmq_vhost
):
    client = await login(async_client, viewer)
    listing = await client.get("/rabbitmq/test-rabbitmq/exchanges", {"vhost": rabbitmq_vhost})
    assert listing.status_code == 200 and "amq.topic" in listing.content.decode()
    default = await client.get(
        "/rabbitmq/test-rabbitmq/exchange", {"vhost": rabbitmq_vhost, "name": ""}
    )
    assert default.status_code == 200
    assert "bound to every queue" in default.content.decode()
    vhosts = await client.get("/rabbitmq/test-rabbitmq/vhosts")
    assert vhosts.status_code == 200 and rabbitmq_vhost in vhosts.content.decode()


async def test_a_kafka_slug_is_not_a_rabbitmq_cluster(
    async_client, viewer, use_clusters, rabbitmq_config, kafka_config
):
    use_clusters(rabbitmq_config, kafka_config)
    client = await login(async_client, viewer)
    response = await client.get("/rabbitmq/test-kafka/")
    assert response.status_code == 404
    assert "not RabbitMQ" in response.content.decode()
