"""The mover capability: moving messages from one queue to another.

A move is described by a ``MoveSpec`` and reports a ``MoveResult``: the frozen
models of ``brokers.rabbitmq.move.model``, the package that first offered the
capability; a new kind with a mover takes and returns the same types. They are
named here for type checking only, so ``brokers.base`` does not import a broker
package when it runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from brokers.base.config import ClusterConfig

if TYPE_CHECKING:
    from brokers.rabbitmq.move.model import Checkpoint, MoveResult, MoveSpec


class Mover(Protocol):
    """Moves messages from a queue to a queue or an exchange, one confirmed batch at a time."""

    async def check_move(self, config: ClusterConfig, spec: MoveSpec) -> int:
        """Check that the source and target exist; return the source's ready count."""

    async def move_messages(
        self,
        config: ClusterConfig,
        spec: MoveSpec,
        checkpoint: Checkpoint | None = None,
        tick: float = 0.5,
    ) -> MoveResult:
        """Run one move to its end and return its exact result.

        Raises a BrokerError only before anything was consumed; every later
        problem is a result with a reason.
        """
