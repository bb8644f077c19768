"""Helpers for tests that move messages: declare, fill, count and drain queues over AMQP."""

from __future__ import annotations

import asyncio

import aio_pika


async def declare(amqp, *queues: str) -> None:
    channel = await amqp.channel()
    for queue in queues:
        await channel.declare_queue(queue, durable=True)
    await channel.close()


async def fill(amqp, queue: str, count: int, prefix: str = "m", **properties) -> list[str]:
    """Publish ``count`` messages with ids ``prefix-i`` (confirmed); return the ids."""
    channel = await amqp.channel(publisher_confirms=True)
    ids = [f"{prefix}-{i}" for i in range(count)]
    await asyncio.gather(
        *(
            channel.default_exchange.publish(
                aio_pika.Message(f"body {i}".encode(), message_id=mid, **properties),
                routing_key=queue,
            )
            for i, mid in enumerate(ids)
        )
    )
    await channel.close()
    return ids


async def depth(amqp, queue: str) -> int:
    channel = await amqp.channel()
    declared = await channel.declare_queue(queue, passive=True)
    await channel.close()
    return int(declared.declaration_result.message_count or 0)


async def drain(amqp, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    """Take every message out of ``queue``, in order."""
    channel = await amqp.channel()
    q = await channel.declare_queue(queue, passive=True)
    messages = []
    while (message := await q.get(no_ack=True, fail=False)) is not None:
        messages.append(message)
    await channel.close()
    return messages


async def ids_in(amqp, queue: str) -> list[str]:
    return [m.message_id or "" for m in await drain(amqp, queue)]


async def consume_ids(amqp, queue: str, within: float = 300) -> list[str]:
    """Every message id in ``queue``, consumed (no ack) with a large prefetch.

    For tens of thousands of messages, where one basic.get each (``drain``) is too slow.
    """
    channel = await amqp.channel()
    await channel.set_qos(prefetch_count=2000)
    q = await channel.declare_queue(queue, passive=True)
    expected = int(q.declaration_result.message_count or 0)
    ids: list[str] = []
    done = asyncio.Event()

    async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
        ids.append(message.message_id or "")
        if len(ids) >= expected:
            done.set()

    if expected:
        await q.consume(on_message, no_ack=True)
        await asyncio.wait_for(done.wait(), timeout=within)
    await channel.close()
    return ids
