"""The move engine against the real RabbitMQ, in the test run's vhost."""

from __future__ import annotations

import asyncio
import datetime as dt
import decimal
import time
import uuid
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import aio_pika
import httpx
import pamqp.encode
import pytest

from brokers.base import NotFound, Secret
from brokers.rabbitmq.connection import accept_every_entity_name
from brokers.rabbitmq.move import (
    ORIGINAL_USER_ID_HEADER,
    REQUEUE_COUNT_HEADER,
    Command,
    MoveProgress,
    MoveSpec,
    MoveTarget,
    StopReason,
    move_messages,
)
from tests.conftest import GUEST, MGMT
from tests.support.move import declare, depth, drain, fill, ids_in

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
async def amqp(rabbitmq_vhost):
    accept_every_entity_name()  # the test's own client must reach the odd names too
    connection = await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=rabbitmq_vhost
    )
    yield connection
    await connection.close()


@pytest.fixture
def names(unique_name):
    # Every queue and exchange name here is as unfriendly as RabbitMQ allows.
    return lambda suffix: f"{unique_name} é/%<script> {suffix}"


def spec(vhost: str, source: str, target: MoveTarget, **kwargs) -> MoveSpec:
    return MoveSpec(vhost=vhost, source=source, target=target, **kwargs)


async def test_it_moves_all_messages_in_order(amqp, rabbitmq_config, rabbitmq_vhost, names):
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    ids = await fill(amqp, source, 300)
    result = await move_messages(
        rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget.queue(target), prefetch=50)
    )
    assert result.reason is StopReason.COMPLETED and result.ok
    assert (result.moved, result.total, result.in_doubt, result.possible_duplicates) == (
        300,
        300,
        0,
        0,
    )
    assert await ids_in(amqp, target) == ids
    assert await depth(amqp, source) == 0


async def test_it_moves_only_the_first_n(amqp, rabbitmq_config, rabbitmq_vhost, names):
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    ids = await fill(amqp, source, 1000)
    result = await move_messages(
        rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget.queue(target), limit=300)
    )
    assert (result.reason, result.moved, result.total) == (StopReason.COMPLETED, 300, 300)
    assert await ids_in(amqp, target) == ids[:300]
    # The rest stays, in its order (a few past the 300th may have been delivered
    # to the move and requeued in place, marked redelivered).
    assert await ids_in(amqp, source) == ids[300:]


async def test_it_moves_to_an_exchange_with_a_routing_key(
    amqp, rabbitmq_config, rabbitmq_vhost, names
):
    source, target, exchange = names("src"), names("dst"), names("ex")
    await declare(amqp, source, target)
    channel = await amqp.channel()
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.DIRECT, auto_delete=True)
    queue = await channel.declare_queue(target, passive=True)
    await queue.bind(ex, routing_key="retry")
    ids = await fill(amqp, source, 20)
    result = await move_messages(
        rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget(exchange, "retry"))
    )
    assert (result.reason, result.moved) == (StopReason.COMPLETED, 20)
    messages = await drain(amqp, target)
    assert [m.message_id for m in messages] == ids
    assert {m.routing_key for m in messages} == {"retry"}
    await channel.close()


async def test_it_keeps_properties_and_headers_and_counts_requeues(
    amqp, rabbitmq_config, rabbitmq_vhost, names
):
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    stamp = dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.UTC)
    headers: dict[str, Any] = {
        "text": "héllo <script>",
        "int": 42,
        "big": 2**40,
        "flag": True,
        "none": None,
        "decimal": decimal.Decimal("3.14"),
        "when": stamp,
        "raw": bytearray(b"\x00\xff"),
        "list": [1, "two", [3]],
        "table": {"nested": {"deeper": 1}},
        REQUEUE_COUNT_HEADER: 2,
    }
    channel = await amqp.channel(publisher_confirms=True)
    original = aio_pika.Message(
        b"\x00\x01 not utf-8 \xff",
        headers=headers,
        content_type="application/octet-stream",
        content_encoding="identity",
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        priority=3,
        correlation_id="corr-1",
        reply_to="replies",
        expiration=600,
        message_id="keep-me",
        timestamp=stamp,
        type="order.created",
        user_id="guest",
        app_id="tests",
    )
    await channel.default_exchange.publish(original, routing_key=source)
    await channel.default_exchange.publish(
        aio_pika.Message(b"second", user_id=None, message_id="no-count"), routing_key=source
    )
    await channel.close()
    result = await move_messages(
        rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget.queue(target))
    )
    assert result.moved == 2
    first, second = await drain(amqp, target)
    assert first.body == b"\x00\x01 not utf-8 \xff"
    assert first.message_id == "keep-me" and first.correlation_id == "corr-1"
    assert first.content_type == "application/octet-stream"
    assert first.content_encoding == "identity"
    assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert first.priority == 3 and first.reply_to == "replies"
    assert first.type == "order.created" and first.app_id == "tests"
    assert first.user_id == "guest" and first.timestamp == stamp
    assert first.expiration is not None
    moved_headers = dict(first.headers)
    assert moved_headers.pop(REQUEUE_COUNT_HEADER) == 3
    expected = {k: v for k, v in headers.items() if k != REQUEUE_COUNT_HEADER}
    assert moved_headers == expected
    assert second.headers[REQUEUE_COUNT_HEADER] == 1
    assert second.message_id == "no-count"


@pytest.fixture
def other_user(rabbitmq_vhost, unique_name):
    """A second RabbitMQ login with rights on the test vhost only, deleted afterwards."""
    name, password = f"{unique_name}-mover", uuid.uuid4().hex
    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
        http.put(f"/api/users/{name}", json={"password": password, "tags": ""}).raise_for_status()
        http.put(
            f"/api/permissions/{quote(rabbitmq_vhost, safe='')}/{name}",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
        yield name, password
        http.delete(f"/api/users/{name}")


async def test_it_moves_empty_and_ten_megabyte_bodies(amqp, rabbitmq_config, rabbitmq_vhost, names):
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    big = bytes(range(256)) * (10 * 1024 * 1024 // 256)
    channel = await amqp.channel(publisher_confirms=True)
    for i, body in enumerate((b"", big, b"x")):
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id=f"b-{i}"), routing_key=source
        )
    await channel.close()
    result = await move_messages(
        rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget.queue(target))
    )
    assert (result.reason, result.moved) == (StopReason.COMPLETED, 3)
    moved = await drain(amqp, target)
    assert [m.body for m in moved] == [b"", big, b"x"]


async def test_a_header_string_that_is_not_utf8_keeps_its_bytes(
    amqp, rabbitmq_config, rabbitmq_vhost, names, monkeypatch
):
    # Java clients send byte[] headers as long strings; pamqp decodes invalid
    # UTF-8 to bytes and cannot encode bytes back.
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    real = pamqp.encode.encode_table_value

    def as_long_string(value):
        if isinstance(value, bytes):
            return b"S" + len(value).to_bytes(4, "big") + value
        return real(value)

    monkeypatch.setattr(pamqp.encode, "encode_table_value", as_long_string)
    await fill(amqp, source, 1, headers={"blob": b"\xff\xfe raw"})
    monkeypatch.undo()
    result = await move_messages(
        rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget.queue(target))
    )
    assert (result.reason, result.moved) == (StopReason.COMPLETED, 1)
    (moved,) = await drain(amqp, target)
    blob = moved.headers["blob"]
    assert isinstance(blob, bytes | bytearray) and bytes(blob) == b"\xff\xfe raw"


async def test_a_foreign_user_id_moves_to_a_header(
    amqp, rabbitmq_config, rabbitmq_vhost, names, other_user
):
    # RabbitMQ refuses a publish whose user_id is not the connection's login.
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    channel = await amqp.channel(publisher_confirms=True)
    await channel.default_exchange.publish(
        aio_pika.Message(b"x", user_id="guest", message_id="u1"), routing_key=source
    )
    await channel.close()
    username, password = other_user
    mover = replace(rabbitmq_config, username=username, password=Secret(password))
    result = await move_messages(mover, spec(rabbitmq_vhost, source, MoveTarget.queue(target)))
    assert result.moved == 1
    (moved,) = await drain(amqp, target)
    assert moved.user_id is None and moved.message_id == "u1"
    assert moved.headers[ORIGINAL_USER_ID_HEADER] == "guest"


async def test_an_unroutable_target_stops_the_move_and_loses_nothing(
    amqp, rabbitmq_config, rabbitmq_vhost, names
):
    source, exchange = names("src"), names("ex")
    await declare(amqp, source)
    channel = await amqp.channel()
    await channel.declare_exchange(exchange, aio_pika.ExchangeType.DIRECT, auto_delete=False)
    ids = await fill(amqp, source, 50)
    result = await move_messages(
        rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget(exchange, "nowhere"))
    )
    assert result.reason is StopReason.UNROUTABLE and not result.ok
    assert "did not route" in result.error and "NO_ROUTE" in result.error
    assert exchange in result.error
    assert result.moved == 0 and result.possible_duplicates == 0
    assert sorted(await ids_in(amqp, source)) == sorted(ids)
    await channel.exchange_delete(exchange)
    await channel.close()


async def test_it_acks_routed_copies_after_an_unroutable_one(
    amqp, rabbitmq_config, rabbitmq_vhost, names
):
    # A headers exchange routes message by message: one unroutable message in
    # the middle stops the move; every routed copy is acked, nothing doubles.
    source, target, exchange = names("src"), names("dst"), names("hx")
    await declare(amqp, source, target)
    channel = await amqp.channel(publisher_confirms=True)
    ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.HEADERS, auto_delete=True)
    queue = await channel.declare_queue(target, passive=True)
    await queue.bind(ex, arguments={"x-match": "all", "route": "yes"})
    for i in range(60):
        route = "no" if i == 40 else "yes"
        await channel.default_exchange.publish(
            aio_pika.Message(b"x", message_id=f"h-{i}", headers={"route": route}),
            routing_key=source,
        )
    result = await move_messages(
        rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget(exchange, ""), prefetch=100)
    )
    assert result.reason is StopReason.UNROUTABLE
    moved, left = await ids_in(amqp, target), await ids_in(amqp, source)
    assert "h-40" in left and "h-40" not in moved
    assert set(moved).isdisjoint(left)
    assert sorted(moved + left) == sorted(f"h-{i}" for i in range(60))
    assert len(moved) == result.moved >= 40
    await channel.close()


async def test_copies_with_one_message_id_all_move_once(
    amqp, rabbitmq_config, rabbitmq_vhost, names
):
    # aiormq matches returns by message id: such copies go one after another.
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    channel = await amqp.channel(publisher_confirms=True)
    for i in range(20):
        await channel.default_exchange.publish(
            aio_pika.Message(f"{i}".encode(), message_id="same"), routing_key=source
        )
    await channel.close()
    result = await move_messages(
        rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget.queue(target))
    )
    assert (result.reason, result.moved) == (StopReason.COMPLETED, 20)
    moved = await drain(amqp, target)
    assert [m.body for m in moved] == [f"{i}".encode() for i in range(20)]
    assert {m.headers[REQUEUE_COUNT_HEADER] for m in moved} == {1}


def to_origin(headers, routing_key):
    """What the dead-letter requeue plugs in: back where x-death says it died."""
    deaths = headers.get("x-death") or []
    if not deaths:
        return None
    return str(deaths[0]["exchange"]), str(deaths[0]["routing-keys"][0])


async def test_dead_letters_go_back_to_each_origin(amqp, rabbitmq_config, rabbitmq_vhost, names):
    dlq, first, second = names("dlq"), names("orders"), names("payments")
    channel = await amqp.channel(publisher_confirms=True)
    await channel.declare_queue(dlq, durable=True)
    dead_lettering = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}
    for origin in (first, second):
        await channel.declare_queue(origin, durable=True, arguments=dead_lettering)
    for i in range(10):
        await channel.default_exchange.publish(
            aio_pika.Message(b"x", message_id=f"d-{i}"), routing_key=(first, second)[i % 2]
        )
    for origin in (first, second):  # reject them all: they dead-letter into dlq
        q = await channel.declare_queue(origin, passive=True)
        while (message := await q.get(fail=False)) is not None:
            await message.reject(requeue=False)
    await channel.default_exchange.publish(
        aio_pika.Message(b"no x-death", message_id="stray"), routing_key=dlq
    )
    await channel.close()
    for _ in range(100):  # dead-lettering is asynchronous
        if await depth(amqp, dlq) == 11:
            break
        await asyncio.sleep(0.05)
    result = await move_messages(
        rabbitmq_config,
        spec(rabbitmq_vhost, dlq, MoveTarget.queue("unused"), route=to_origin),
    )
    # Ten go home; the stray one has no origin: the move stops there and keeps it.
    assert result.reason is StopReason.REFUSED and "no known target" in result.error
    assert result.moved == 10
    assert sorted(await ids_in(amqp, first)) == [f"d-{i}" for i in range(0, 10, 2)]
    assert sorted(await ids_in(amqp, second)) == [f"d-{i}" for i in range(1, 10, 2)]
    assert await ids_in(amqp, dlq) == ["stray"]


async def test_a_missing_source_or_target_is_refused_before_anything_moves(
    amqp, rabbitmq_config, rabbitmq_vhost, names
):
    source = names("src")
    await declare(amqp, source)
    await fill(amqp, source, 3)
    with pytest.raises(NotFound, match="does not exist"):
        await move_messages(
            rabbitmq_config, spec(rabbitmq_vhost, names("nope"), MoveTarget.queue(source))
        )
    with pytest.raises(NotFound, match="target queue"):
        await move_messages(
            rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget.queue(names("nope")))
        )
    with pytest.raises(NotFound, match="target exchange"):
        await move_messages(
            rabbitmq_config, spec(rabbitmq_vhost, source, MoveTarget(names("nope"), "k"))
        )
    assert await depth(amqp, source) == 3


async def test_it_honours_the_rate_limit(amqp, rabbitmq_config, rabbitmq_vhost, names):
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    await fill(amqp, source, 40)
    started = time.monotonic()
    result = await move_messages(
        rabbitmq_config,
        spec(rabbitmq_vhost, source, MoveTarget.queue(target), rate_limit=40),
    )
    assert result.moved == 40
    # 40 messages at 40/s with a burst of 2 take about a second; loosely:
    assert time.monotonic() - started >= 0.7


async def test_all_is_the_depth_at_start(amqp, rabbitmq_config, rabbitmq_vhost, names):
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    first = await fill(amqp, source, 60, prefix="old")

    async def checkpoint(progress: MoveProgress) -> Command:
        if progress.done and not late:
            late.extend(await fill(amqp, source, 25, prefix="new"))
        return Command.RUN

    late: list[str] = []
    result = await move_messages(
        rabbitmq_config,
        spec(rabbitmq_vhost, source, MoveTarget.queue(target), rate_limit=100),
        checkpoint,
        tick=0.1,
    )
    assert late, "the move ended before new messages arrived"
    assert (result.moved, result.total) == (60, 60)
    assert await ids_in(amqp, target) == first
    assert sorted(await ids_in(amqp, source)) == sorted(late)


async def test_cancel_mid_way_gives_exact_counts(amqp, rabbitmq_config, rabbitmq_vhost, names):
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    ids = await fill(amqp, source, 1000)
    seen: list[MoveProgress] = []

    async def checkpoint(progress: MoveProgress) -> Command:
        seen.append(progress)
        return Command.CANCEL if progress.done >= 100 else Command.RUN

    result = await move_messages(
        rabbitmq_config,
        spec(rabbitmq_vhost, source, MoveTarget.queue(target), rate_limit=500),
        checkpoint,
        tick=0.1,
    )
    assert result.reason is StopReason.CANCELLED and result.ok
    assert 100 <= result.moved < 1000
    assert (result.in_doubt, result.possible_duplicates) == (0, 0)
    moved, left = await ids_in(amqp, target), await ids_in(amqp, source)
    assert len(moved) == result.moved
    assert moved == ids[: result.moved]
    assert sorted(left) == sorted(ids[result.moved :])
    assert seen[-1].done == result.moved and seen[-1].total == 1000
    assert any(p.rate > 0 for p in seen)


async def test_pause_holds_the_move_until_resumed(amqp, rabbitmq_config, rabbitmq_vhost, names):
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    await fill(amqp, source, 300)
    during_pause: list[int] = []

    async def checkpoint(progress: MoveProgress) -> Command:
        if progress.done >= 50 and len(during_pause) < 6:
            during_pause.append(progress.done)
            return Command.PAUSE
        return Command.RUN

    result = await move_messages(
        rabbitmq_config,
        spec(rabbitmq_vhost, source, MoveTarget.queue(target), rate_limit=300),
        checkpoint,
        tick=0.1,
    )
    assert result.moved == 300
    # Once what was in flight settled, nothing moved until the checkpoint said run.
    assert len(set(during_pause[-3:])) == 1 and during_pause[-1] < 300


async def connection_named(name: str) -> str:
    """The management API's name of the connection whose connection_name is ``name``."""
    deadline = time.monotonic() + 15
    async with httpx.AsyncClient(base_url=MGMT, auth=GUEST, timeout=5) as http:
        while time.monotonic() < deadline:
            response = await http.get(
                "/api/connections", params={"columns": "name,client_properties"}
            )
            for item in response.json():
                if item.get("client_properties", {}).get("connection_name") == name:
                    return str(item["name"])
            await asyncio.sleep(0.1)
    raise AssertionError(f"no connection named {name!r} within 15 s")


async def close_connection(name: str) -> None:
    async with httpx.AsyncClient(base_url=MGMT, auth=GUEST, timeout=5) as http:
        response = await http.delete(
            f"/api/connections/{quote(name, safe='')}", headers={"X-Reason": "test: broker down"}
        )
        assert response.status_code in (200, 204), response.text


async def test_the_connection_dying_mid_move_stops_with_an_exact_count(
    amqp, rabbitmq_config, rabbitmq_vhost, names
):
    # "The broker goes down": the management API force-closes the move's own
    # connection (found by its connection_name), the shared broker stays up.
    source, target = names("src"), names("dst")
    await declare(amqp, source, target)
    total = 10_000
    ids = await fill(amqp, source, total)
    connection_name = f"mqboard move test {uuid.uuid4().hex[:8]}"
    killed = asyncio.Event()
    finding: asyncio.Task[str] | None = None

    async def checkpoint(progress: MoveProgress) -> Command:
        nonlocal finding
        # The management API lists a connection ~5 s after it opens: hold the
        # move until it does, then kill it at full speed, confirms in flight.
        finding = finding or asyncio.ensure_future(connection_named(connection_name))
        if not finding.done():
            return Command.PAUSE
        if progress.done >= 300 and not killed.is_set():
            killed.set()
            await close_connection(finding.result())
        return Command.RUN

    result = await move_messages(
        rabbitmq_config,
        spec(rabbitmq_vhost, source, MoveTarget.queue(target), connection_name=connection_name),
        checkpoint,
        tick=0.05,
    )
    assert killed.is_set()
    assert result.reason is StopReason.CONNECTION_LOST and not result.ok
    assert "connection to RabbitMQ was lost" in result.error
    assert 300 <= result.moved < total
    # RabbitMQ requeues every unacked message when the connection dies.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if await depth(amqp, source) + await depth(amqp, target) >= total:
            break
        await asyncio.sleep(0.05)
    moved, left = await ids_in(amqp, target), await ids_in(amqp, source)
    # Nothing lost, every message is somewhere, each once per queue.
    assert set(moved) | set(left) == set(ids)
    assert len(set(moved)) == len(moved) and len(set(left)) == len(left)
    # The count is exact: what left the source is what was acked; only acks
    # in doubt (sent, not known processed) may blur it, and they are counted.
    removed = total - len(left)
    assert result.moved - result.in_doubt <= removed <= result.moved
    # Duplicates (at the target and back in the source) are within the
    # in-flight window the result reports, and carry the original id.
    assert len(set(moved) & set(left)) <= result.possible_duplicates
    assert len(moved) >= result.moved - result.in_doubt
