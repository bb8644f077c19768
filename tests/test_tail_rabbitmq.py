"""RabbitMQ live tail on the real broker: the tap itself, then through the websocket."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import aio_pika
import pytest

from brokers.base import NotFound
from brokers.base.tail import NotTappable, TailBatch
from brokers.rabbitmq import RabbitMQBroker
from brokers.rabbitmq.tail import open_rabbitmq_tap
from dashboard.core.connections import close_all
from dashboard.core.websockets import UNAUTHENTICATED
from dashboard.tail.hub import running_tails
from dashboard.tail.websockets import BAD_REQUEST
from tests.support.rabbitmq import ODD, bind, declare, mgmt, q, unique
from tests.support.websockets import connect, receive_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis]


def queue_exists(vhost: str, name: str) -> bool:
    with mgmt() as http:
        return http.get(f"/api/queues/{q(vhost)}/{q(name)}").status_code == 200


async def until(check, seconds: float = 10, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not await asyncio.to_thread(check):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def publish_many(vhost: str, key: str, bodies: list[bytes], **props: object) -> None:
    connection = await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=vhost
    )
    async with connection:
        channel = await connection.channel(publisher_confirms=False)
        exchange = await channel.get_exchange("amq.topic")
        for body in bodies:
            await exchange.publish(aio_pika.Message(body, **props), routing_key=key)  # type: ignore[arg-type]


@pytest.fixture
async def broker(rabbitmq_config) -> AsyncIterator[RabbitMQBroker]:
    adapter = RabbitMQBroker(rabbitmq_config)
    await adapter.connect()
    yield adapter
    await adapter.close()


@pytest.fixture
def bound_queue(rabbitmq_vhost: str) -> tuple[str, str]:
    """A queue fed by amq.topic (and, like every queue, the default exchange)."""
    name, key = unique("tail"), f"tail.{unique('k')}"
    declare(rabbitmq_vhost, name)
    bind(rabbitmq_vhost, "amq.topic", name, key)
    return name, key


# -- the tap -----------------------------------------------------------------------


async def test_it_shows_at_most_the_rate_and_counts_every_skipped_message_exactly(
    broker, rabbitmq_vhost, bound_queue
):
    name, key = bound_queue
    tap = await open_rabbitmq_tap(broker, rabbitmq_vhost, name, rate=5)
    try:
        assert tap.bindings == 1
        assert any("default exchange" in note for note in tap.notes)
        got: list[TailBatch] = []

        async def read() -> None:
            async for batch in tap.batches():
                got.append(batch)

        reader = asyncio.create_task(read())
        await publish_many(rabbitmq_vhost, key, [f'{{"n": {i}}}'.encode() for i in range(300)])
        deadline = time.monotonic() + 10
        while sum(len(b.messages) + b.skipped for b in got) < 300:
            assert time.monotonic() < deadline, "the tap neither showed nor skipped everything"
            await asyncio.sleep(0.1)
        reader.cancel()
        shown = [m for b in got for m in b.messages]
        assert sum(len(b.messages) + b.skipped for b in got) == 300
        assert all(b.skipped_exact for b in got)
        assert 1 <= len(shown) <= 15, "rate 5 for at most ~2 s"
        assert shown[0].body.format == "json" and shown[0].routing_key == key
        assert shown[0].exchange == "amq.topic"
    finally:
        await tap.close()
    await until(lambda: not queue_exists(rabbitmq_vhost, tap.tap_queue), what="tap queue gone")


async def test_it_refuses_a_queue_fed_only_by_the_default_exchange(broker, rabbitmq_vhost):
    name = unique("tail-plain")
    declare(rabbitmq_vhost, name)
    with pytest.raises(NotTappable, match="default exchange"):
        await open_rabbitmq_tap(broker, rabbitmq_vhost, name)


async def test_it_says_when_the_queue_does_not_exist(broker, rabbitmq_vhost):
    with pytest.raises(NotFound, match="does not exist"):
        await open_rabbitmq_tap(broker, rabbitmq_vhost, unique("missing"))


async def test_it_copies_headers_exchange_bindings_with_their_arguments(broker, rabbitmq_vhost):
    name = unique("tail-hdr")
    declare(rabbitmq_vhost, name)
    with mgmt() as http:
        http.post(
            f"/api/bindings/{q(rabbitmq_vhost)}/e/amq.headers/q/{q(name)}",
            json={"routing_key": "", "arguments": {"x-match": "all", "kind": "order"}},
        ).raise_for_status()
    tap = await open_rabbitmq_tap(broker, rabbitmq_vhost, name, rate=50)
    try:
        with mgmt() as http:
            bindings = http.get(
                f"/api/exchanges/{q(rabbitmq_vhost)}/amq.headers/bindings/source"
            ).json()
        mine = [b for b in bindings if b["destination"] == tap.tap_queue]
        assert [b["arguments"] for b in mine] == [{"x-match": "all", "kind": "order"}]
    finally:
        await tap.close()


# -- the websocket ----------------------------------------------------------------------


def path(**params: str) -> str:
    return "/ws/tail/queue/?" + urlencode(params)


@pytest.fixture
async def closing():
    yield
    await close_all()


@pytest.mark.django_db(transaction=True)
async def test_it_refuses_anonymous_sockets_and_foreign_origins(
    client, viewer, use_clusters, rabbitmq_vhost, closing
):
    url = path(cluster="test-rabbitmq", vhost=rabbitmq_vhost, name="q")
    _, connected, code = await connect(None, None, url)
    assert (connected, code) == (False, UNAUTHENTICATED)
    _, connected, _ = await connect(client, viewer, url, origin=(b"origin", b"http://evil.test"))
    assert not connected
    _, connected, code = await connect(client, viewer, "/ws/tail/queue/?cluster=test-kafka&name=t")
    assert (connected, code) == (False, BAD_REQUEST)


@pytest.mark.django_db(transaction=True)
async def test_a_viewer_gets_at_most_the_rate_with_the_skipped_count(
    client, viewer, settings, use_clusters, rabbitmq_vhost, bound_queue, closing
):
    settings.MQB_TAIL_RATE = 4
    name, key = bound_queue
    ws, connected, _ = await connect(
        client, viewer, path(cluster="test-rabbitmq", vhost=rabbitmq_vhost, name=name)
    )
    assert connected
    assert (await ws.receive_json_from(timeout=5))["state"] == "paused"
    await ws.send_json_to({"action": "start"})
    await receive_until(ws, lambda e, _: e.get("state") == "running")
    hostile = b"<script>alert(1)</script>"
    await publish_many(rabbitmq_vhost, key, [hostile] * 120, headers={"x-evil": "<b>h</b>"})
    events = await receive_until(ws, lambda e, _: e.get("skipped", 0) + e.get("shown", 0) >= 120)
    messages = [e for e in events if e["type"] == "tail.message"]
    last = events[-1]
    assert last["skipped"] + last["shown"] == 120 and last["skipped_exact"]
    assert 1 <= len(messages) <= 12, "4 per second, for a few seconds at most"
    body = messages[0]["message"]["body"]
    assert body["text"] == hostile.decode(), "sent as data; the page sets it as text"
    assert ["x-evil", "string", "<b>h</b>"] in [list(h) for h in messages[0]["message"]["headers"]]
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_tap_queue_goes_when_the_last_viewer_leaves(
    client, viewer, use_clusters, rabbitmq_vhost, closing
):
    name = unique(ODD)
    declare(rabbitmq_vhost, name)
    bind(rabbitmq_vhost, "amq.direct", name, name)
    url = path(cluster="test-rabbitmq", vhost=rabbitmq_vhost, name=name)
    first, _, _ = await connect(client, viewer, url)
    second, _, _ = await connect(client, viewer, url)
    for ws in (first, second):
        await ws.receive_json_from(timeout=5)
        await ws.send_json_to({"action": "start"})
        await receive_until(ws, lambda e, _: e.get("state") == "running")
    tails = [t for k, t in running_tails().items() if k[-1] == name]
    assert len(tails) == 1 and len(tails[0].viewers) == 2, "one tail shared by both viewers"
    tap_queue = tails[0].source.tap_queue  # type: ignore[union-attr]
    assert queue_exists(rabbitmq_vhost, tap_queue)
    await first.send_json_to({"action": "pause"})
    await receive_until(first, lambda e, _: e.get("state") == "paused")
    assert queue_exists(rabbitmq_vhost, tap_queue), "the other viewer still watches"
    await second.disconnect()
    await until(lambda: not queue_exists(rabbitmq_vhost, tap_queue), what="tap queue deleted")
    assert not [k for k in running_tails() if k[-1] == name]
    await first.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_it_says_when_a_queue_cannot_be_tapped(
    client, viewer, use_clusters, rabbitmq_vhost, closing
):
    name = unique("plain")
    declare(rabbitmq_vhost, name)
    ws, _, _ = await connect(
        client, viewer, path(cluster="test-rabbitmq", vhost=rabbitmq_vhost, name=name)
    )
    await ws.receive_json_from(timeout=5)
    await ws.send_json_to({"action": "start"})
    events = await receive_until(ws, lambda e, _: e.get("state") == "untappable")
    assert "cannot be tapped" in events[-1]["message"]
    await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_the_queue_page_carries_the_tail_with_its_name_escaped(
    async_client, viewer, use_clusters, rabbitmq_vhost, closing
):
    name = unique(ODD)
    declare(rabbitmq_vhost, name)
    await async_client.aforce_login(viewer)
    page = await async_client.get(
        "/rabbitmq/test-rabbitmq/queue", {"vhost": rabbitmq_vhost, "name": name}
    )
    html = page.content.decode()
    assert page.status_code == 200 and "data-tail" in html
    assert "<script>alert(1)</script>" not in html
    assert f"name={q(name)}" in html.replace("&amp;", "&")
