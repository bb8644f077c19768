"""The RabbitMQ JSON API: same services as the pages, roles and CSRF on every write."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest
from django.test import AsyncClient

from dashboard.core.connections import close_all
from dashboard.models import AuditEntry
from tests.support.rabbitmq import declare, delete_queue, drain, publish, unique, wait_for_depth

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]

API = "/api/clusters/test-rabbitmq/rabbitmq"


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config):
    use_clusters(rabbitmq_config)
    yield rabbitmq_config
    await close_all()


@pytest.fixture
def queue(rabbitmq_vhost):
    name = unique("api")
    declare(rabbitmq_vhost, name, {"x-dead-letter-exchange": "nowhere"})
    publish(rabbitmq_vhost, name, "one", "two")
    yield name
    delete_queue(rabbitmq_vhost, name)


async def test_it_needs_a_login(async_client):
    response = await async_client.get(f"{API}/queues")
    assert response.status_code == 401


async def test_it_pages_and_describes_queues(async_client, viewer, rabbit, rabbitmq_vhost, queue):
    wait_for_depth(rabbitmq_vhost, queue, 2)
    await async_client.aforce_login(viewer)
    page = (
        await async_client.get(
            f"{API}/queues", {"vhost": rabbitmq_vhost, "name": queue, "sort": "depth"}
        )
    ).json()
    assert page["filtered"] == 1 and page["page_count"] == 1 and page["requests"] == 1
    (row,) = page["items"]
    assert row["name"] == queue and row["messages"] == 2
    assert row["dead_letter_exchange"] == "nowhere" and row["consumers"] is None
    detail = (
        await async_client.get(f"{API}/queue", {"vhost": rabbitmq_vhost, "name": queue})
    ).json()
    assert detail["ready"] == 2 and detail["dlx_source"] == "argument"
    assert detail["dead_letters_to"][0]["note"].startswith("exchange 'nowhere' does not exist")
    by_consumers = (
        await async_client.get(
            f"{API}/queues", {"vhost": rabbitmq_vhost, "name": queue, "sort": "consumers"}
        )
    ).json()
    # Sorting by consumers turns statistics on (rates appear; the count may still be
    # unknown for a queue younger than one statistics interval).
    assert by_consumers["items"][0]["publish_rate"] is not None
    assert by_consumers["query"]["sort"] == "consumers"
    bad = await async_client.get(f"{API}/queues", {"sort": "size"})
    assert bad.status_code == 400 and bad.json()["code"] == "invalid"


async def test_a_missing_queue_is_a_json_404(async_client, viewer, rabbit, rabbitmq_vhost):
    await async_client.aforce_login(viewer)
    response = await async_client.get(
        f"{API}/queue", {"vhost": rabbitmq_vhost, "name": unique("gone")}
    )
    assert response.status_code == 404 and response.json()["code"] == "not_found"


async def test_a_peek_needs_confirmation_then_returns_decoded_messages(
    async_client, operator, rabbit, rabbitmq_vhost, queue
):
    await async_client.aforce_login(operator)
    url = f"{API}/queue/peek?vhost={rabbitmq_vhost}&name={queue}"
    refused = await async_client.post(url, {"count": 5}, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["code"] == "confirmation_required"
    response = await async_client.post(
        url, {"count": 5, "confirm": True}, content_type="application/json"
    )
    assert response.status_code == 200
    data = response.json()
    assert data["destructive"] and [m["body"] for m in data["messages"]] == ["one", "two"]
    first = data["messages"][0]
    assert first["body_encoding"] == "utf-8" and first["decoded"]["text"] is None
    body = await async_client.get(first["download_url"])
    assert body.status_code == 200 and body.content == b"one"
    assert body["Content-Type"] == "application/octet-stream"
    stranger = AsyncClient()
    await stranger.aforce_login(operator)  # another session of the same user
    assert (await stranger.get(first["download_url"])).status_code == 404


async def test_headers_round_trip_through_publish_and_peek(
    async_client, operator, rabbit, rabbitmq_vhost, queue
):
    await async_client.aforce_login(operator)
    headers = {
        "text": "ü <script>",
        "n": 7,
        "half": 0.5,
        "void": None,
        "raw": {"$bytes": base64.b64encode(b"\x00\xff").decode()},
        "price": {"$decimal": "9.99"},
        "at": {"$timestamp": "2024-01-02T03:04:05+00:00"},
        "nested": {"list": [1, {"$bytes": "AQ=="}], "ok": True},
    }
    sent = await async_client.post(
        f"{API}/publish",
        {
            "vhost": rabbitmq_vhost,
            "exchange": "",
            "routing_key": queue,
            "body": base64.b64encode(b"\xde\xad\xbe\xef").decode(),
            "body_encoding": "base64",
            "headers": headers,
            "properties": {"message_id": "api-1", "timestamp": "now"},
        },
        content_type="application/json",
    )
    assert sent.status_code == 200 and sent.json()["confirmed"]
    peeked = await async_client.post(
        f"{API}/queue/peek?vhost={rabbitmq_vhost}&name={queue}",
        {"count": 3, "confirm": True},
        content_type="application/json",
    )
    last = peeked.json()["messages"][-1]
    assert last["headers"] == headers
    assert last["decoded"]["format"] == "binary"
    assert last["body_encoding"] == "base64" and last["decoded"]["text"].startswith("00000000")
    assert base64.b64decode(last["body"]) == b"\xde\xad\xbe\xef"
    assert last["properties"]["message_id"] == "api-1"
    lossy = await async_client.post(
        f"{API}/publish",
        {"vhost": rabbitmq_vhost, "routing_key": queue, "headers": {"f": 0.1}},
        content_type="application/json",
    )
    assert lossy.status_code == 400 and "lose precision" in lossy.json()["error"]


async def test_writes_need_the_operator_role(async_client, viewer, rabbit, rabbitmq_vhost, queue):
    await async_client.aforce_login(viewer)
    purge = await async_client.post(
        f"{API}/queue/purge?vhost={rabbitmq_vhost}&name={queue}",
        {},
        content_type="application/json",
    )
    assert purge.status_code == 403 and purge.json()["code"] == "forbidden"
    published = await async_client.post(
        f"{API}/publish",
        {"vhost": rabbitmq_vhost, "routing_key": queue, "body": "x"},
        content_type="application/json",
    )
    assert published.status_code == 403
    assert len(drain(rabbitmq_vhost, queue)) == 2


async def test_writes_need_the_csrf_token(operator, rabbit, rabbitmq_vhost, queue):
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(operator)
    url = f"{API}/queue/purge?vhost={rabbitmq_vhost}&name={queue}"
    refused = await client.post(url, {}, content_type="application/json")
    assert refused.status_code == 403
    page = await client.get(
        "/rabbitmq/test-rabbitmq/queue/messages", {"vhost": rabbitmq_vhost, "name": queue}
    )
    token = page.cookies["csrftoken"].value
    done = await client.post(
        url, {}, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert done.status_code == 200 and done.json()["purged"] == 2


async def test_a_protected_purge_needs_the_name_and_is_audited(
    async_client, operator, use_clusters, rabbitmq_config, rabbitmq_vhost, queue
):
    use_clusters(replace(rabbitmq_config, protected=True))
    try:
        await async_client.aforce_login(operator)
        url = f"{API}/queue/purge?vhost={rabbitmq_vhost}&name={queue}"
        refused = await async_client.post(url, {}, content_type="application/json")
        assert refused.status_code == 400
        assert "type the queue name" in refused.json()["error"]
        done = await async_client.post(
            url, {"confirm_name": queue}, content_type="application/json"
        )
        result = done.json()
        assert (result["queue"], result["purged"], result["ready_before"]) == (queue, 2, 2)
        assert result["unacked_before"] in (0, None)  # None: no statistics yet for a new queue
        entry = await AuditEntry.objects.filter(action="rabbitmq.purge", outcome="ok").aget()
        assert entry.parameters["depth_before"] == 2
    finally:
        await close_all()


async def test_it_lists_exchanges_and_vhosts(async_client, viewer, rabbit, rabbitmq_vhost):
    await async_client.aforce_login(viewer)
    page = (await async_client.get(f"{API}/exchanges", {"vhost": rabbitmq_vhost})).json()
    assert "amq.fanout" in [x["name"] for x in page["items"]]
    exchange = (
        await async_client.get(f"{API}/exchange", {"vhost": rabbitmq_vhost, "name": "amq.fanout"})
    ).json()
    assert exchange["exchange"]["type"] == "fanout"
    vhosts = (await async_client.get(f"{API}/vhosts")).json()["vhosts"]
    assert rabbitmq_vhost in [v["name"] for v in vhosts]
