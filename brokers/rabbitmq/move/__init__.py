"""Move messages between RabbitMQ queues, or to an exchange, losing nothing.

Features: all, or the first N, messages of a queue go to another queue
(through the default exchange) or to an exchange with a routing key, or each
to its own target (``MoveSpec.route``: a dead letter back to its origin). Each is
consumed with a manual ack, published with publisher confirms and mandatory
routing (aiormq channel with ``on_return_raises=True``), and acked only after
its copy is confirmed. Properties and headers are kept; the
``x-mqboard-requeue-count`` header is set to its previous value plus one. An
unroutable copy (basic.return) or a refused one (basic.nack) stops the move
with a clear error; that message and every unconfirmed one go back to the
source. Rate limit (token bucket), pause and cancel through a checkpoint
callback that also receives the progress (done, total, rate). Thousands of
confirms in flight, publishes written in batches and acks sent in batches
(``multiple``) make it fast: see ``engine``.

"All" is frozen at start: the source's ready-message count (passive
queue.declare) when the move begins. At most that many messages move, so
messages published during the move are not swept in, and a move from a queue
into an exchange that routes back to it ends. If other consumers drain the
source meanwhile, the move stops when the source is empty ("source_empty").

Connection settings: the cluster's ``amqp_url`` host and port (the vhost is
the move's own), ``username``, ``password``, ``timeout`` and ``verify_tls``.
Each move opens its own connection, named by ``MoveSpec.connection_name`` (the
management UI shows it), and never reconnects. ``MoveSpec.prefetch`` and
``window_bytes`` bound the messages (and bytes) held unacked at once.

Limitations and the in-flight window: delivery is at-least-once. If the
connection dies mid-move, the result's ``moved`` counts the acks sent after
confirmed publishes; ``in_doubt`` of them were not yet known to be processed.
RabbitMQ requeues every unacked message, so a message whose copy was confirmed
(or published) but whose ack was lost is now at the target AND back in the
source: a duplicate carrying the same message id (``possible_duplicates``
bounds them; at most the prefetch window). If the broker process itself
crashes, it may also not have persisted recent acks: more duplicates of the
same kind. A message without a message id gets a random one (aiormq matches a
basic.return to its publish by id). A ``user_id`` property other than the
mover's login moves to the ``x-mqboard-original-user-id`` header (RabbitMQ
refuses to forward it). Messages delivered past the frozen count (the tail of
the prefetch window) and messages held during a pause stay unacked and are
requeued in place, marked redelivered; RabbitMQ's shovel does the same. Header
values survive, but pamqp may pick other AMQP integer or float widths when it
re-encodes them, and sends a long string that is not UTF-8 as a byte array.
The engine relies on aiormq 7.2's channel bookkeeping (checked at start) and
replaces its "multiple" confirm handling on its own channel (``connect``).
"""

from __future__ import annotations

from brokers.base import ClusterConfig
from brokers.base.validate import amqp_exchange, amqp_short
from brokers.rabbitmq.connection import close_quietly, open_connection
from brokers.rabbitmq.move.engine import Mover
from brokers.rabbitmq.move.model import (
    ORIGINAL_USER_ID_HEADER,
    REQUEUE_COUNT_HEADER,
    Checkpoint,
    Command,
    MoveProgress,
    MoveResult,
    MoveSpec,
    MoveTarget,
    Route,
    StopReason,
    TokenBucket,
)
from brokers.rabbitmq.move.supervise import supervise

__all__ = [
    "ORIGINAL_USER_ID_HEADER",
    "REQUEUE_COUNT_HEADER",
    "Checkpoint",
    "Command",
    "MoveProgress",
    "MoveResult",
    "MoveSpec",
    "MoveTarget",
    "QueueMover",
    "Route",
    "StopReason",
    "TokenBucket",
    "check_move",
    "move_messages",
]


async def move_messages(
    config: ClusterConfig, spec: MoveSpec, checkpoint: Checkpoint | None = None, tick: float = 0.5
) -> MoveResult:
    """Run one move to its end and return its exact result.

    Raises a BrokerError only before anything was consumed (cannot connect,
    source or target missing); every later problem is a result with a reason.
    """
    check_names(spec)
    connection = await open_connection(config, spec.vhost, spec.connection_name)
    try:
        return await supervise(Mover(config, spec, connection, checkpoint, tick))
    finally:
        await close_quietly(connection)


async def check_move(config: ClusterConfig, spec: MoveSpec) -> int:
    """Check that the source and target exist; return the source's ready count."""
    check_names(spec)
    connection = await open_connection(config, spec.vhost, f"{spec.connection_name} (check)")
    try:
        mover = Mover(config, spec, connection, None, 0.5)
        await mover.open_probe()
        return await mover.check_ends()
    finally:
        await close_quietly(connection)


class QueueMover:
    """The RabbitMQ kind's mover capability: :func:`check_move` and :func:`move_messages`."""

    async def check_move(self, config: ClusterConfig, spec: MoveSpec) -> int:
        return await check_move(config, spec)

    async def move_messages(
        self,
        config: ClusterConfig,
        spec: MoveSpec,
        checkpoint: Checkpoint | None = None,
        tick: float = 0.5,
    ) -> MoveResult:
        return await move_messages(config, spec, checkpoint, tick)


def check_names(spec: MoveSpec) -> None:
    """Names pamqp must be able to send (``brokers.base.validate``), checked before connecting."""
    amqp_short(spec.vhost, "vhost")
    amqp_short(spec.source, "queue")
    if spec.target.is_queue:
        amqp_short(spec.target.routing_key, "target_queue")
    else:
        amqp_exchange(spec.target.exchange, "target_exchange")
        amqp_short(spec.target.routing_key, "routing_key")
