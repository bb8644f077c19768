"""The mover, for every kind that offers one: a move moves exactly the messages asked for."""

from __future__ import annotations

import pytest

from brokers.base import ClusterConfig, NotFound
from brokers.base.contract import BrokerKind
from brokers.base.move import Mover
from brokers.rabbitmq.move.model import MoveSpec, MoveTarget, StopReason
from tests.support.sandbox import Sandbox


@pytest.mark.capability("mover")
class TestMover:
    @pytest.fixture
    def mover(self, kind: BrokerKind) -> Mover:
        assert kind.mover is not None
        return kind.mover

    async def test_a_move_moves_all_messages(
        self, mover: Mover, kind_config: ClusterConfig, sandbox: Sandbox
    ):
        source, target = await sandbox.make(), await sandbox.make()
        await sandbox.send(source, *(f"m{i}".encode() for i in range(7)))
        spec = MoveSpec(
            vhost=source.vhost, source=source.name, target=MoveTarget.queue(target.name)
        )
        assert await mover.check_move(kind_config, spec) == 7
        result = await mover.move_messages(kind_config, spec)
        assert (result.reason, result.moved, result.failed) == (StopReason.COMPLETED, 7, 0)
        back = MoveSpec(
            vhost=source.vhost, source=target.name, target=MoveTarget.queue(source.name)
        )
        assert await mover.check_move(kind_config, back) == 7
        assert await mover.check_move(kind_config, spec) == 0

    async def test_a_limited_move_moves_only_the_first_n(
        self, mover: Mover, kind_config: ClusterConfig, sandbox: Sandbox
    ):
        source, target = await sandbox.make(), await sandbox.make()
        await sandbox.send(source, *(f"m{i}".encode() for i in range(5)))
        spec = MoveSpec(
            vhost=source.vhost, source=source.name, target=MoveTarget.queue(target.name), limit=2
        )
        result = await mover.move_messages(kind_config, spec)
        assert (result.moved, result.total) == (2, 2)
        assert await mover.check_move(kind_config, spec) == 3

    async def test_a_missing_target_is_refused_before_anything_moves(
        self, mover: Mover, kind_config: ClusterConfig, sandbox: Sandbox
    ):
        source = await sandbox.make()
        await sandbox.send(source, b"stay")
        spec = MoveSpec(
            vhost=source.vhost,
            source=source.name,
            target=MoveTarget.queue(f"{source.name}-missing"),
        )
        with pytest.raises(NotFound):
            await mover.check_move(kind_config, spec)
