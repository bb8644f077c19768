"""The tap, for every kind that offers one: a tail sees what is sent after it opens."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from brokers.base import Broker, NotFound
from brokers.base.contract import BrokerKind
from brokers.base.tail import TailMessage, TailOptions, Tap
from tests.support.sandbox import Sandbox


@pytest.mark.capability("tap")
class TestTap:
    @pytest.fixture
    def tap(self, kind: BrokerKind) -> Tap:
        assert kind.tap is not None
        return kind.tap

    async def test_a_tail_sees_a_message_sent_after_it_opens(
        self, tap: Tap, broker: Broker, sandbox: Sandbox
    ):
        made = await sandbox.make()
        await sandbox.send(made, b"before")
        source = await tap.open(broker, made.name, vhost=made.vhost, options=TailOptions(rate=50))
        try:
            marker = f'{{"tail": "{uuid.uuid4().hex}"}}'.encode()
            seen: list[TailMessage] = []

            async def read() -> None:
                async for batch in source.batches():
                    seen.extend(batch.messages)
                    if any(m.body.text and "tail" in m.body.text for m in seen):
                        return

            reader = asyncio.create_task(read())
            # A tap may settle where it starts reading only once it runs (Kafka resolves
            # "the end" on its first fetch): send until one is seen, for at most 15 s.
            for _ in range(30):
                await sandbox.send(made, marker)
                done, _pending = await asyncio.wait({reader}, timeout=0.5)
                if done:
                    break
            else:
                reader.cancel()
                raise AssertionError("the tail saw nothing sent after it opened")
        finally:
            await source.close()
        assert {m.body.format for m in seen} == {"json"}, "only what was sent after it opened"
        assert seen[0].size == len(marker)
        assert source.counting

    async def test_a_missing_entity_is_not_found(self, tap: Tap, broker: Broker, sandbox: Sandbox):
        made = await sandbox.make()
        with pytest.raises(NotFound):
            await tap.open(broker, f"{made.name}-missing", vhost=made.vhost, options=TailOptions())

    def test_its_entity_names_a_tail_route(self, tap: Tap):
        assert tap.entity in ("queue", "topic")
