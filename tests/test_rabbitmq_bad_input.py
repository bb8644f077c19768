"""Hostile names, huge and broken bodies, every AMQP header type: clear answers, nothing lost."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aio_pika
import pytest
from django.conf import settings

from dashboard.core.connections import close_all
from tests.support.rabbitmq import (
    ODD,
    bind,
    declare,
    declare_exchange,
    delete_queue,
    drain,
    odd_vhost,
    publish,
    q,
    unique,
    wait_for_depth,
)

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]

SLUG = "test-rabbitmq"


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config):
    use_clusters(rabbitmq_config)
    yield rabbitmq_config
    await close_all()


@pytest.fixture(scope="module")
def odd():
    """A vhost and a queue in it, both named with / % space unicode and <script>."""
    with odd_vhost() as vhost:
        name = f"{ODD} {unique('queue')}"
        declare(vhost, name)
        publish(vhost, name, "<script>alert('body')</script>", "second")
        wait_for_depth(vhost, name, 2)
        yield vhost, name


async def amqp_publish(vhost: str, queue: str, *messages: aio_pika.Message) -> None:
    connection = await aio_pika.connect("amqp://guest:guest@127.0.0.1:5672/" + q(vhost))
    try:
        channel = await connection.channel(publisher_confirms=True)
        for message in messages:
            await channel.default_exchange.publish(message, queue)
    finally:
        await connection.close()


async def peek_page(client, vhost: str, name: str, count: int = 10):
    return await client.post(
        f"/rabbitmq/{SLUG}/queue/messages",
        {"vhost": vhost, "name": name, "count": str(count), "confirm": "1"},
        follow=True,  # a peek answers with a redirect to what it read
    )


def download_links(page: str) -> list[str]:
    return [unescape(link) for link in re.findall(r'class="download" href="([^"]+)"', page)]


async def test_odd_names_are_listed_linked_and_escaped(async_client, viewer, rabbit, odd):
    vhost, name = odd
    await async_client.aforce_login(viewer)
    listing = await async_client.get(f"/rabbitmq/{SLUG}/", {"vhost": vhost})
    page = listing.content.decode()
    assert listing.status_code == 200
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert f"?vhost={q(vhost)}&amp;name={q(name)}" in page
    detail = await async_client.get(f"/rabbitmq/{SLUG}/queue", {"vhost": vhost, "name": name})
    assert detail.status_code == 200
    assert "<script>alert(1)" not in detail.content.decode()
    api = await async_client.get(
        f"/api/clusters/{SLUG}/rabbitmq/queue", {"vhost": vhost, "name": name}
    )
    assert (api.json()["vhost"], api.json()["name"]) == (vhost, name)


async def test_odd_names_can_be_published_to_peeked_and_purged(async_client, operator, rabbit, odd):
    vhost, name = odd
    exchange = f"{ODD} exchange"
    declare_exchange(vhost, exchange, "fanout")
    bind(vhost, exchange, name, "")
    await async_client.aforce_login(operator)
    sent = await async_client.post(
        f"/api/clusters/{SLUG}/rabbitmq/publish",
        {"vhost": vhost, "exchange": exchange, "routing_key": "ü <k>", "body": "third"},
        content_type="application/json",
    )
    assert sent.status_code == 200, sent.content
    exchange_page = await async_client.get(
        f"/rabbitmq/{SLUG}/exchange", {"vhost": vhost, "name": exchange}
    )
    assert exchange_page.status_code == 200
    assert "&lt;script&gt;" in exchange_page.content.decode()
    peeked = await peek_page(async_client, vhost, name)
    page = peeked.content.decode()
    assert peeked.status_code == 200, re.findall(r'role="alert">([^<]*)<', page)
    assert "&lt;script&gt;alert(&#x27;body&#x27;)&lt;/script&gt;" in page
    assert "<script>alert('body')" not in page
    assert page.count('<article class="message"') == 3
    purged = await async_client.post(
        f"/rabbitmq/{SLUG}/queue/purge", {"vhost": vhost, "name": name}
    )
    assert purged.status_code == 302
    location = urlsplit(purged["Location"])
    assert location.path == f"/rabbitmq/{SLUG}/queue"
    assert parse_qs(location.query) == {"vhost": [vhost], "name": [name]}
    assert drain(vhost, name) == []


async def test_a_queue_deleted_between_list_and_detail_is_404_everywhere(
    async_client, viewer, rabbit, rabbitmq_vhost
):
    name = unique("deleted")
    declare(rabbitmq_vhost, name)
    await async_client.aforce_login(viewer)
    listing = await async_client.get(f"/rabbitmq/{SLUG}/", {"vhost": rabbitmq_vhost, "name": name})
    assert name in listing.content.decode()
    delete_queue(rabbitmq_vhost, name)
    params = {"vhost": rabbitmq_vhost, "name": name}
    for url in (f"/rabbitmq/{SLUG}/queue", f"/rabbitmq/{SLUG}/queue/messages"):
        response = await async_client.get(url, params)
        assert response.status_code == 404, url
        assert "does not exist" in response.content.decode()
    api = await async_client.get(f"/api/clusters/{SLUG}/rabbitmq/queue", params)
    assert api.status_code == 404 and "does not exist" in api.json()["error"]


async def test_a_10_mb_body_is_shown_truncated_and_downloads_whole(
    async_client, operator, rabbit, rabbitmq_vhost
):
    name = unique("big")
    declare(rabbitmq_vhost, name)
    big = (b"0123456789abcdef" * 65536) * 10  # 10 MiB of text
    await amqp_publish(rabbitmq_vhost, name, aio_pika.Message(big, content_type="text/plain"))
    try:
        await async_client.aforce_login(operator)
        response = await peek_page(async_client, rabbitmq_vhost, name)
        page = response.content.decode()
        assert response.status_code == 200
        assert f"the first {settings.MQB_DISPLAY_LIMIT} bytes" in page
        assert len(page) < 3 * settings.MQB_DISPLAY_LIMIT  # not 10 MB of HTML
        (link,) = download_links(page)
        body = await async_client.get(link)
        assert body.status_code == 200 and body.content == big
        assert len(drain(rabbitmq_vhost, name)) == 1
    finally:
        delete_queue(rabbitmq_vhost, name)


async def test_invalid_utf8_is_shown_as_hex_and_downloads_byte_for_byte(
    async_client, operator, rabbit, rabbitmq_vhost
):
    name = unique("binary")
    declare(rabbitmq_vhost, name)
    raw = b"\xff\xfe\x00 bad \xc3\x28 utf-8 \x80\x81"
    await amqp_publish(rabbitmq_vhost, name, aio_pika.Message(raw, content_type="text/plain"))
    try:
        await async_client.aforce_login(operator)
        page = (await peek_page(async_client, rabbitmq_vhost, name)).content.decode()
        assert "invalid UTF-8 at byte 0" in page
        assert "ff fe 00 20 62 61 64 20" in page
        (link,) = download_links(page)
        assert (await async_client.get(link)).content == raw
    finally:
        delete_queue(rabbitmq_vhost, name)


async def test_every_amqp_header_type_is_shown(async_client, operator, rabbit, rabbitmq_vhost):
    name = unique("headers")
    declare(rabbitmq_vhost, name)
    headers: dict[str, Any] = {
        "a-table": {"inner": {"deep": "yes"}},
        "an-array": [1, "two", None],
        "bytes": bytearray(b"\x00\x01\xfe"),
        "when": datetime(2024, 2, 3, 4, 5, 6, tzinfo=UTC),
        "price": Decimal("12.50"),
        "nothing": None,
        "x-death": [
            {
                "queue": "orders",
                "reason": "rejected",
                "count": 3,
                "exchange": "events",
                "routing-keys": ["user.created"],
                "time": datetime(2024, 2, 3, 4, 0, 0, tzinfo=UTC),
            }
        ],
    }
    await amqp_publish(rabbitmq_vhost, name, aio_pika.Message(b"{}", headers=headers))
    try:
        await async_client.aforce_login(operator)
        page = (await peek_page(async_client, rabbitmq_vhost, name)).content.decode()
        for shown in (
            "table",
            "array",
            "0x0001fe",
            "2024-02-03T04:05:06+00:00",
            "12.50",
            "null",
            "rejected</b> in queue",
        ):
            assert shown in page, shown
        api = await async_client.post(
            f"/api/clusters/{SLUG}/rabbitmq/queue/peek?vhost={q(rabbitmq_vhost)}&name={name}",
            {"count": 1},
            content_type="application/json",
        )
        (message,) = api.json()["messages"]
        assert message["headers"]["bytes"] == {"$bytes": "AAH+"}
        assert message["headers"]["price"] == {"$decimal": "12.50"}
        assert message["headers"]["when"] == {"$timestamp": "2024-02-03T04:05:06+00:00"}
        assert message["x_death"][0]["count"] == 3
    finally:
        delete_queue(rabbitmq_vhost, name)
