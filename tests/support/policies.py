"""Helpers of the retry policy tests: letters that came back N times, and rules made quickly.

Holds no tests. A RabbitMQ message published with ``x-mqboard-requeue-count``
(what every requeue sets) and rejected into the DLQ is captured as a letter that
came back that many times.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import aio_pika
from asgiref.sync import sync_to_async

from dashboard.deadletters import dispatch
from dashboard.deadletters.policies import rules
from dashboard.models import DeadLetter, RetryPolicy
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h


async def reject_with_count(made: flow.RabbitFlow, message_id: str, came_back: int) -> None:
    """Dead-letter one message whose requeue-count header says it came back ``came_back``
    times, and capture it."""
    before = await flow.stored_count(made.dlq)
    connection = await h.amqp(made.vhost)
    try:
        channel = await connection.channel(publisher_confirms=True)
        exchange = await channel.get_exchange(made.events)
        await exchange.publish(
            aio_pika.Message(
                b'{"order": 1}',
                message_id=message_id,
                content_type="application/json",
                headers={"x-mqboard-requeue-count": came_back},
            ),
            routing_key="order.1.created",
        )
        queue = await channel.get_queue(made.work)
        message = None
        deadline = time.monotonic() + 10
        while message is None and time.monotonic() < deadline:
            message = await queue.get(fail=False)
        assert message is not None, "the published message never reached the work queue"
        await message.reject(requeue=False)
    finally:
        await connection.close()

    async def stored() -> bool:
        return await flow.stored_count(made.dlq) > before

    await flow.capture_until(made.target, stored)


@sync_to_async
def make_rule(admin: Any, name: str, **values: Any) -> RetryPolicy:
    """A rule created through the service (audited), exact delays (no jitter) by default."""
    values.setdefault("jitter", 0.0)
    return rules.do_create_policy(user=admin, data=rules.RuleInput(name=name, **values))


async def dispatch_until_sent(*pks: int) -> str:
    """Run the dispatcher (in a thread, as the worker would) until none of ``pks`` waits
    or is in flight; what it returned."""
    stop = threading.Event()
    running = asyncio.ensure_future(asyncio.to_thread(dispatch.run_dispatcher, stop))

    def open_count() -> int:
        waiting = (DeadLetter.Status.SCHEDULED, DeadLetter.Status.REQUEUING)
        return DeadLetter.objects.filter(pk__in=pks, status__in=waiting).count()

    try:
        for _ in range(300):
            if running.done() or not await sync_to_async(open_count)():
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
    return await running
