"""What a move is asked to do and what it reports back: plain frozen dataclasses."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

REQUEUE_COUNT_HEADER = "x-mqboard-requeue-count"
"""Added to every moved message: the previous value plus one (RabbitMQ's own
``x-death`` count is not reliable across versions and never counts a move)."""

ORIGINAL_USER_ID_HEADER = "x-mqboard-original-user-id"
"""Where a ``user_id`` property that is not the mover's login goes: RabbitMQ
refuses a publish whose ``user_id`` differs from the authenticated user."""


@dataclass(frozen=True)
class MoveTarget:
    """A queue (through the default exchange) or an exchange with a routing key."""

    exchange: str = ""
    routing_key: str = ""

    @classmethod
    def queue(cls, name: str) -> MoveTarget:
        return cls(exchange="", routing_key=name)

    @property
    def is_queue(self) -> bool:
        return self.exchange == ""

    def describe(self) -> str:
        if self.is_queue:
            return f"queue {self.routing_key!r}"
        return f"exchange {self.exchange!r} with routing key {self.routing_key!r}"


Route = Callable[[Mapping[str, Any], str], tuple[str, str] | None]
"""A per-message target, instead of ``MoveSpec.target``: (headers, routing key the
message was delivered with) -> (exchange, routing key), or None when the message
has no known target (the move then stops; that message stays in the source).
The dead-letter requeue passes one that reads the origin from ``x-death``."""


@dataclass(frozen=True)
class MoveSpec:
    """One move. ``limit=None`` means "all": the source's ready count when the move starts.

    ``prefetch`` caps the messages held unacked at once (the in-flight window);
    the window also stays under ``window_bytes`` of bodies, so that large
    messages do not pile up in memory. RabbitMQ confirms persistent messages
    only once its queue index is synced, so the window, not the CPU, limits
    a small one: thousands of small messages in flight keep both ends busy.
    """

    vhost: str
    source: str
    target: MoveTarget
    limit: int | None = None
    rate_limit: float | None = None
    prefetch: int = 4000
    window_bytes: int = 16 * 1024 * 1024
    connection_name: str = "mqboard move"
    stall_timeout: float = 60.0
    route: Route | None = None


class Command(StrEnum):
    """What the caller wants, answered at every checkpoint."""

    RUN = "run"
    PAUSE = "pause"
    CANCEL = "cancel"


class StopReason(StrEnum):
    COMPLETED = "completed"
    SOURCE_EMPTY = "source_empty"
    CANCELLED = "cancelled"
    UNROUTABLE = "unroutable"
    REFUSED = "refused"
    SOURCE_DELETED = "source_deleted"
    CONNECTION_LOST = "connection_lost"
    STALLED = "stalled"


@dataclass(frozen=True)
class MoveProgress:
    done: int
    total: int
    rate: float
    elapsed: float
    paused: bool = False
    in_flight: int = 0


Checkpoint = Callable[[MoveProgress], Awaitable[Command]]
"""Called about every ``tick`` seconds with the progress; returns run, pause or cancel."""


@dataclass(frozen=True)
class MoveResult:
    """The exact outcome.

    ``moved``: messages whose copy the broker confirmed at the target and whose
    ack was then sent to the source. ``in_doubt``: how many of those acks were
    sent but not yet known to be processed when the connection died (0 after
    any orderly stop); each is either gone from the source or back in it with a
    copy at the target. ``possible_duplicates``: messages that may now be both
    at the target and back in the source (confirmed or published copies whose
    ack never took effect), all carrying the same message id. Every message
    not moved is in the source queue (RabbitMQ requeues what was not acked).
    ``failed``: copies the broker returned (unroutable) or refused; their
    originals went back to the source.
    """

    moved: int
    total: int
    reason: StopReason
    error: str = ""
    in_doubt: int = 0
    possible_duplicates: int = 0
    published: int = 0
    failed: int = 0
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.reason in (StopReason.COMPLETED, StopReason.SOURCE_EMPTY, StopReason.CANCELLED)

    @property
    def rate(self) -> float:
        return self.moved / self.elapsed if self.elapsed > 0 else 0.0


class TokenBucket:
    """A rate limit: ``rate`` messages per second with bursts of at most ``burst``.

    ``take`` hands out whole tokens and says how long until the next one.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 20)
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def reset(self) -> None:
        self.tokens = self.capacity
        self.stamp = time.monotonic()

    def take(self, wanted: int) -> tuple[int, float]:
        """Take up to ``wanted`` tokens: (how many, seconds until the next one if short)."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        granted = min(wanted, int(self.tokens))
        self.tokens -= granted
        wait = 0.0 if granted == wanted else (1 - self.tokens) / self.rate
        return granted, wait
