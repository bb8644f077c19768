"""The dead-letter capability, run against every broker kind's real broker.

Each kind gets a :class:`Rig` that makes a DLQ fed by an origin, puts real
dead letters on it and reads what arrives back at the origin; the tests
themselves only use ``kind.deadletters``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import pytest
from asgiref.sync import sync_to_async

from brokers.base import ClusterConfig
from brokers.base.contract import BrokerKind
from brokers.base.deadletters import (
    CapturedLetter,
    CaptureOptions,
    DeadLetters,
    Destination,
    DiscoveryOptions,
    Result,
    StoredLetter,
    StoreResult,
)
from brokers.registry import make_broker
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h


@dataclass
class ListSink:
    """Keeps every letter it is given, duplicates included (the broker must not send any)."""

    letters: list[CapturedLetter] = field(default_factory=list)

    async def begin(self) -> None:
        return None

    async def store(self, letters: Sequence[CapturedLetter]) -> StoreResult:
        self.letters.extend(letters)
        return StoreResult(inserted=len(letters), duplicates=0)

    async def acknowledged(self, result: StoreResult) -> None:
        return None


class Rig:
    """A DLQ fed by an origin on one broker kind."""

    vhost = ""
    dlq = ""

    def __init__(self, config: ClusterConfig, vhost: str) -> None:
        self.config = config

    async def make(self) -> None:
        raise NotImplementedError

    async def dead_letter(self, count: int, first: int = 0) -> None:
        raise NotImplementedError

    async def read_origin(self, count: int) -> list[bytes]:
        raise NotImplementedError

    async def remove(self) -> None:
        raise NotImplementedError


class RabbitMQRig(Rig):
    def __init__(self, config: ClusterConfig, vhost: str) -> None:
        self.vhost, self.base = vhost, h.unique("contract")

    async def make(self) -> None:
        self.events, self.work, self.dlq = await h.dead_letter_topology(self.vhost, self.base)

    async def dead_letter(self, count: int, first: int = 0) -> None:
        ids = [f"{self.base}-{first + i}" for i in range(count)]
        bodies = [f'{{"order": {first + i}}}'.encode() for i in range(count)]
        await h.reject_through(self.vhost, self.events, self.work, ids, bodies)

    async def read_origin(self, count: int) -> list[bytes]:
        found = await flow.take_all(self.vhost, self.work, count)
        return [bytes(m.body) for m in found]

    async def remove(self) -> None:
        for name in (self.work, self.dlq):
            with contextlib.suppress(Exception):
                await sync_to_async(h.mgmt().delete)(f"/api/queues/{h.q(self.vhost)}/{h.q(name)}")


class KafkaRig(Rig):
    def __init__(self, config: ClusterConfig, vhost: str) -> None:
        self.origin = h.kafka_name("")
        self.dlq = f"{self.origin}-dlq"

    async def make(self) -> None:
        await sync_to_async(h.create_topic)(self.origin)
        await sync_to_async(h.create_topic)(self.dlq)

    async def dead_letter(self, count: int, first: int = 0) -> None:
        records = [
            flow.spring_record(first + i, self.origin, f"k{first + i}".encode())
            for i in range(count)
        ]
        await sync_to_async(h.produce)(self.dlq, records)

    async def read_origin(self, count: int) -> list[bytes]:
        found = await asyncio.to_thread(flow.read_topic, self.origin, count)
        return [value for _, value, _ in found]

    async def remove(self) -> None:
        with contextlib.suppress(Exception):
            await sync_to_async(h.delete_topics)(self.origin, self.dlq)


RIGS: dict[str, type[Rig]] = {"rabbitmq": RabbitMQRig, "kafka": KafkaRig}


@pytest.fixture
async def rig(
    kind_config: ClusterConfig, kind: BrokerKind, request: pytest.FixtureRequest
) -> AsyncIterator[Rig]:
    vhost = request.getfixturevalue("rabbitmq_vhost") if kind.has_vhosts else ""
    made = RIGS[kind_config.kind](kind_config, vhost)
    await made.make()
    try:
        yield made
    finally:
        await made.remove()


def capability(kind: BrokerKind) -> DeadLetters:
    assert kind.deadletters is not None, f"{kind.label} has no dead-letter capability"
    return kind.deadletters


async def capture_until(
    deadletters: DeadLetters, config: ClusterConfig, rig: Rig, sink: ListSink, count: int
) -> None:
    """Run one capture session until the sink holds ``count`` letters, then stop it."""
    options = CaptureOptions(batch_size=10, prefetch=10, group=f"contract-{rig.dlq}")
    engine = deadletters.capture(config, rig.vhost, rig.dlq, sink, options)
    stop = asyncio.Event()
    task = asyncio.create_task(engine.run(stop))
    try:

        async def enough() -> bool:
            return len(sink.letters) >= count

        await h.async_wait_for(enough, 30, what=f"{count} captured")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def stored(letter: CapturedLetter, body: bytes | None = None) -> StoredLetter:
    info = letter.info
    return StoredLetter(
        vhost=letter.vhost,
        origin_exchange=info.origin_exchange or "",
        origin_routing_key=info.origin_routing_key,
        origin_queue=info.origin_queue or "",
        origin_topic=info.origin_topic or "",
        origin_partition=info.origin_partition,
        is_task=bool(info.task_name),
        key=letter.key,
        headers=letter.headers,
        properties=letter.properties,
        body=letter.body if body is None else body,
    )


class TestDeadLetters:
    async def test_it_discovers_a_fresh_dlq(self, kind_config, kind, rig):
        deadletters = capability(kind)
        options = DiscoveryOptions(vhosts=(rig.vhost or None,))
        async with make_broker(kind_config) as broker:
            found = await deadletters.discover(broker, options)
        names = {(d.vhost, d.name) for d in found.dlqs}
        assert (rig.vhost, rig.dlq) in names
        assert deadletters.describe(rig.vhost, rig.dlq)

    async def test_it_captures_with_the_origin_and_never_twice(self, kind_config, kind, rig):
        deadletters = capability(kind)
        sink = ListSink()
        await rig.dead_letter(1)
        await capture_until(deadletters, kind_config, rig, sink, 1)
        (first,) = sink.letters
        assert first.dlq == rig.dlq and first.body == b'{"order": 0}'
        assert first.info.origin_queue or first.info.origin_topic

        await rig.dead_letter(1, first=1)  # a new letter: the restarted capture must see it
        await capture_until(deadletters, kind_config, rig, sink, 2)
        assert [le.body for le in sink.letters] == [b'{"order": 0}', b'{"order": 1}']
        assert len({le.capture_key for le in sink.letters}) == 2

    async def test_it_sends_one_letter_and_a_batch_back_to_their_origin(
        self, kind_config, kind, rig
    ):
        deadletters = capability(kind)
        sink = ListSink()
        await rig.dead_letter(3)
        await capture_until(deadletters, kind_config, rig, sink, 3)
        letters = [deadletters.outgoing(stored(le), None, None) for le in sink.letters]
        sender = deadletters.sender(kind_config, letters[0].address)
        try:
            single = await sender.send(letters[:1])
            batch = await sender.send(letters[1:])
        finally:
            await sender.close()
        assert [o.result for o in single + batch] == [Result.SENT] * 3
        back = await rig.read_origin(3)
        assert sorted(back) == [b'{"order": 0}', b'{"order": 1}', b'{"order": 2}']

    async def test_it_reports_an_unknown_destination_as_an_outcome(self, kind_config, kind, rig):
        deadletters = capability(kind)
        sink = ListSink()
        await rig.dead_letter(1)
        await capture_until(deadletters, kind_config, rig, sink, 1)
        nowhere = f"mqb-nowhere-{uuid.uuid4().hex[:8]}"
        form = {"exchange": nowhere, "routing_key": "x", "topic": nowhere}
        target = deadletters.target_from(form)
        letter = deadletters.outgoing(stored(sink.letters[0]), target, None)
        sender = deadletters.sender(kind_config, letter.address)
        try:
            (outcome,) = await sender.send([letter])
        finally:
            await sender.close()
        assert outcome.result == Result.UNROUTABLE, outcome
        assert nowhere in outcome.message

    async def test_it_names_the_destinations_that_do_not_exist_now(self, kind_config, kind, rig):
        deadletters = capability(kind)
        sink = ListSink()
        await rig.dead_letter(1)
        await capture_until(deadletters, kind_config, rig, sink, 1)
        home = Destination.of(deadletters.outgoing(stored(sink.letters[0]), None, None))
        nowhere = f"mqb-nowhere-{uuid.uuid4().hex[:8]}"
        form = {"exchange": nowhere, "routing_key": "x", "topic": nowhere}
        target = deadletters.target_from(form)
        gone = Destination.of(deadletters.outgoing(stored(sink.letters[0]), target, None))
        bad = Destination(home.address, tuple((k, "bad\ud800name") for k, _ in gone.fields))
        async with make_broker(kind_config) as broker:
            missing = await deadletters.missing(broker, [home, gone, gone, bad])
        assert set(missing) == {gone, bad}
        assert nowhere in missing[gone] and "does not exist" in missing[gone]
        assert "cannot be named" in missing[bad]
