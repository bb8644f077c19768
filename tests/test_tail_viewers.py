"""Several viewers of one live tail, on the real brokers: one tap, the same messages for all.

A tail's tap is shared by every viewer of the queue or topic in the process;
each message is rendered once and every viewer is sent the same frame (with
its own counts); one viewer leaving leaves the tail running for the others.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import aio_pika
import pytest

from dashboard.core.connections import close_all
from dashboard.tail.events import AmqpTailed, RenderedTailed, TailDecodedOut, TailFrame
from dashboard.tail.hub import Tail, running_tails
from tests.support.metrics import create_topic, delete_topics, produce
from tests.support.rabbitmq import bind, declare, unique
from tests.support.websockets import connect, receive_until


@pytest.fixture
async def closing():
    yield
    await close_all()


async def start(client, user, url: str):
    ws, connected, _ = await connect(client, user, url)
    assert connected
    assert (await ws.receive_json_from(timeout=5))["state"] == "paused"
    await ws.send_json_to({"action": "start"})
    await receive_until(ws, lambda e, _: e.get("state") == "running")
    return ws


def counted(total: int):
    """Until the viewer's last event accounts for ``total`` messages, shown or skipped."""
    return lambda e, _: e.get("skipped", 0) + e.get("shown", 0) >= total


def shown(events: list[dict[str, Any]], key) -> list[Any]:
    return [key(e["message"]) for e in events if e["type"] == "tail.message"]


def the_tail(name: str) -> Tail:
    [tail] = [t for k, t in running_tails().items() if k[-1] == name]
    return tail


async def watch_together(client, viewer, url: str, name: str, send, key) -> None:
    """Two viewers share one tap and get the same messages; one leaves, the other goes on."""
    first = await start(client, viewer, url)
    second = await start(client, viewer, url)
    tail = the_tail(name)
    tap = tail.source
    assert tap is not None and len(tail.viewers) == 2, "one tail, one tap, two viewers"

    await send(0, 60)
    got_first = await receive_until(first, counted(60))
    got_second = await receive_until(second, counted(60))
    for events in (got_first, got_second):
        assert events[-1]["skipped"] + events[-1]["shown"] == 60
    assert 1 <= len(shown(got_first, key)) < 60, "paced: some shown, the rest skipped"
    assert shown(got_first, key) == shown(got_second, key), "the same messages for both"
    assert got_first[-1]["shown"] == got_second[-1]["shown"]

    await first.send_json_to({"action": "pause"})
    await receive_until(first, lambda e, _: e.get("state") == "paused")
    assert the_tail(name) is tail and tail.source is tap, "still running for the other viewer"
    assert len(tail.viewers) == 1
    await asyncio.sleep(1.1)  # a second on, the rate lets the next burst be shown
    await send(60, 30)
    later = await receive_until(second, counted(90))
    assert later[-1]["skipped"] + later[-1]["shown"] == 90
    assert shown(later, key), "the remaining viewer is still shown messages"

    await second.disconnect()
    assert not [k for k in running_tails() if k[-1] == name], "the last viewer stopped it"
    await first.disconnect()


@pytest.mark.rabbitmq
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_two_queue_viewers_share_one_tap_and_see_the_same_messages(
    client, viewer, settings, use_clusters, rabbitmq_vhost, closing
):
    settings.MQB_TAIL_RATE = 5
    name, routing_key = unique("tail-two"), f"tail.{unique('k')}"
    declare(rabbitmq_vhost, name)
    bind(rabbitmq_vhost, "amq.topic", name, routing_key)

    async def send(first: int, count: int) -> None:
        connection = await aio_pika.connect(
            host="127.0.0.1", login="guest", password="guest", virtualhost=rabbitmq_vhost
        )
        async with connection:
            channel = await connection.channel(publisher_confirms=False)
            exchange = await channel.get_exchange("amq.topic")
            for n in range(first, first + count):
                body = json.dumps({"n": n}).encode()
                await exchange.publish(aio_pika.Message(body), routing_key=routing_key)

    url = "/ws/tail/queue/?" + urlencode(
        {"cluster": "test-rabbitmq", "vhost": rabbitmq_vhost, "name": name}
    )
    await watch_together(
        client, viewer, url, name, send, lambda m: json.loads(m["body"]["text"])["n"]
    )


@pytest.mark.kafka
@pytest.mark.redis
@pytest.mark.django_db(transaction=True)
async def test_two_topic_viewers_share_one_tap_and_see_the_same_records(
    client, viewer, settings, use_clusters, unique_name, closing
):
    settings.MQB_TAIL_RATE = 5
    create_topic(unique_name, partitions=1)
    try:

        async def send(first: int, count: int) -> None:
            if first == 0:
                await asyncio.sleep(0.5)  # the tap's consumer resolves its end offsets
            await asyncio.to_thread(produce, unique_name, count)

        url = "/ws/tail/topic/?" + urlencode({"cluster": "test-kafka", "name": unique_name})
        await watch_together(client, viewer, url, unique_name, send, lambda m: m["offset"])
    finally:
        delete_topics(unique_name)


def test_a_frame_is_the_json_of_its_tail_message():
    decoded = TailDecodedOut(format="text", size=7, text='<b>"ü"', truncated=False, note="")
    message = AmqpTailed(
        received_at=datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC).isoformat(),
        size=7,
        body=decoded,
        headers=[("x-h", "string", "v\n")],
        exchange="amq.topic",
        routing_key="k",
        properties={"content_type": "text/plain"},
    )
    frame = TailFrame(RenderedTailed.of(message), skipped=12, skipped_exact=False, shown=3)
    assert json.loads(frame.text()) == frame.event().as_json()
    assert json.loads(frame.text())["message"]["body"]["text"] == '<b>"ü"'
