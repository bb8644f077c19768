"""Queues and topics a contract test makes for itself, on each kind's real broker.

A capability's contract test makes what it browses, tails or moves through the
broker's own client, never through the capability under test, and feeds it the
same way. :data:`SANDBOXES` names each kind's; ``tests/brokers/contract`` checks
that every registered kind has one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import aio_pika
import pytest

from tests.support.kafka import KafkaKit
from tests.support.rabbitmq import bind, declare, delete_queue, unique


@dataclass(frozen=True)
class Entity:
    """A queue (in ``vhost``) or a topic (``vhost`` is "")."""

    vhost: str
    name: str


class Sandbox(Protocol):
    async def make(self) -> Entity:
        """A new, empty queue or topic that :meth:`send` reaches."""

    async def send(self, entity: Entity, *bodies: bytes) -> None:
        """Deliver ``bodies`` to ``entity``, confirmed by the broker."""

    async def cleanup(self) -> None: ...


@dataclass
class RabbitMQSandbox:
    """Queues bound to ``amq.topic`` with their own name as the routing key."""

    vhost: str
    made: list[str] = field(default_factory=list)

    async def make(self) -> Entity:
        name = unique("contract")
        await asyncio.to_thread(declare, self.vhost, name)
        await asyncio.to_thread(bind, self.vhost, "amq.topic", name, name)
        self.made.append(name)
        return Entity(self.vhost, name)

    async def send(self, entity: Entity, *bodies: bytes) -> None:
        connection = await aio_pika.connect(
            host="127.0.0.1", login="guest", password="guest", virtualhost=entity.vhost
        )
        async with connection:
            channel = await connection.channel(publisher_confirms=True)
            exchange = await channel.get_exchange("amq.topic")
            for body in bodies:
                await exchange.publish(aio_pika.Message(body), routing_key=entity.name)

    async def cleanup(self) -> None:
        for name in self.made:
            await asyncio.to_thread(delete_queue, self.vhost, name)


@dataclass
class KafkaSandbox:
    """Topics of one partition."""

    kit: KafkaKit = field(default_factory=KafkaKit)

    async def make(self) -> Entity:
        return Entity("", await asyncio.to_thread(self.kit.topic))

    async def send(self, entity: Entity, *bodies: bytes) -> None:
        records = [{"value": body, "partition": 0} for body in bodies]
        await asyncio.to_thread(self.kit.produce, entity.name, *records)

    async def cleanup(self) -> None:
        await asyncio.to_thread(self.kit.cleanup)


SANDBOXES: dict[str, Callable[[pytest.FixtureRequest], Sandbox]] = {
    "rabbitmq": lambda request: RabbitMQSandbox(request.getfixturevalue("rabbitmq_vhost")),
    "kafka": lambda request: KafkaSandbox(),
}
