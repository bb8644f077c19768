"""What every live tail hands out, and the limiter that paces it.

A tap (``brokers.rabbitmq.tail``, ``brokers.kafka.tail``) reads the messages
flowing through a queue or topic now, at most ``rate`` per second, and hands
out :class:`TailBatch` es of decoded :class:`TailMessage` s with a count of what
it skipped. :func:`decode_for_tail` is the shared decoder both taps use.

:class:`RateLimiter` admits at most N events in any one-second window, spaced
at least 1/N seconds apart (the taps and every viewer use it). A token bucket
of capacity N lets 2N through across a window boundary (a full bucket at the
end of one second, refilled in the next); "at most N messages per second" is
meant literally here, so this keeps the times of the last N admissions and
admits another only once the oldest is a second old. Events are also spaced by
1/N: a burst of N at once followed by the next burst a second later would,
after network jitter, reach a browser as up to 2N within a second.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from brokers.base.errors import BrokerError
from brokers.decode import Decoded, HeaderValue, decode_body, decode_headers
from brokers.decode.headers import Headers

if TYPE_CHECKING:
    from brokers.base.contract import Broker

# Bytes of a body the decoder sees: a longer body is previewed from its start,
# so a 100 MB message costs the web process no more than a 64 KiB one.
DECODE_BYTES = 64 * 1024


class NotTappable(BrokerError):
    """A tail cannot see this entity's messages (e.g. only the default exchange feeds it)."""

    code = "not_tappable"

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=True)


@dataclass(frozen=True)
class TailMessage:
    """One message seen by a tap, decoded for a preview.

    RabbitMQ fills ``exchange``, ``routing_key`` and ``properties``; Kafka fills
    ``partition``, ``offset``, ``timestamp`` and ``key``. ``received_at`` is when
    the tap got it.
    """

    received_at: datetime
    size: int
    body: Decoded
    headers: tuple[HeaderValue, ...] = ()
    exchange: str | None = None
    routing_key: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)
    partition: int | None = None
    offset: int | None = None
    timestamp: datetime | None = None
    key: Decoded | None = None


@dataclass(frozen=True)
class TailBatch:
    """Messages to show, and how many others passed by unseen since the last batch.

    ``skipped_exact`` is False when the tap knows it lost an unknown number more
    (its buffer overflowed): ``skipped`` is then a lower bound.
    """

    messages: tuple[TailMessage, ...] = ()
    skipped: int = 0
    skipped_exact: bool = True


class TailSource(Protocol):
    """An open tap. ``notes`` say what the tail cannot see; ``counting`` how skips are counted."""

    notes: tuple[str, ...]
    counting: str

    def batches(self) -> AsyncGenerator[TailBatch, None]: ...

    async def close(self) -> None: ...


def decode_for_tail(
    body: bytes | None,
    *,
    content_type: str | None = None,
    content_encoding: str | None = None,
    headers: Headers | None = None,
    preview: int = 1024,
) -> Decoded:
    """The shared decoder on at most :data:`DECODE_BYTES` of ``body``, cut to ``preview`` chars."""
    if body is None or len(body) <= DECODE_BYTES:
        return decode_body(
            body,
            content_type=content_type,
            content_encoding=content_encoding,
            headers=headers,
            limit=preview,
        )
    decoded = decode_body(
        body[:DECODE_BYTES],
        content_type=content_type,
        content_encoding=content_encoding,
        headers=headers,
        limit=preview,
    )
    note = f"{len(body)} bytes; preview decoded from the first {DECODE_BYTES} bytes only"
    return dataclasses.replace(
        decoded,
        size=len(body),
        truncated=True,
        note=f"{decoded.note}; {note}" if decoded.note else note,
    )


def header_rows(headers: Headers | None, preview: int) -> tuple[HeaderValue, ...]:
    return decode_headers(headers, limit=min(preview, 256))[:50]


# -- pacing ------------------------------------------------------------------

WINDOW = 1.0


class RateLimiter:
    def __init__(self, rate: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = max(1, int(rate))
        self._clock = clock
        self._admitted: deque[float] = deque(maxlen=self.rate)
        # A little under 1/N, so that a steady N per second is not held back by clock jitter.
        self.gap = 0.95 * WINDOW / self.rate

    def allow(self) -> bool:
        """Admit one event now if the window has room (and count it)."""
        now = self._clock()
        if self._admitted and now - self._admitted[-1] < self.gap:
            return False
        if len(self._admitted) == self.rate and now - self._admitted[0] < WINDOW:
            return False
        self._admitted.append(now)
        return True

    def wait_time(self) -> float:
        """Seconds until :meth:`allow` would admit an event (0 if now)."""
        if not self._admitted:
            return 0.0
        now = self._clock()
        wait = self._admitted[-1] + self.gap - now
        if len(self._admitted) == self.rate:
            wait = max(wait, self._admitted[0] + WINDOW - now)
        return max(0.0, wait)


@dataclass(frozen=True)
class TailOptions:
    """How a tap reads: at most ``rate`` messages a second, bodies cut to ``preview``
    characters; a tap that buffers on the broker keeps at most ``buffer`` messages
    and ``buffer_bytes`` bytes there (RabbitMQ's tap queue)."""

    rate: int = 20
    preview: int = 1024
    buffer: int = 10_000
    buffer_bytes: int = 16 * 1024 * 1024


class Tap(Protocol):
    """The live-tail capability: opens a tail source on one queue or topic of a cluster.

    ``entity`` names what a tail watches (``"queue"``, ``"topic"``), and so the
    websocket route that serves it. ``vhost`` is ``""`` for a kind without vhosts.
    """

    @property
    def entity(self) -> str: ...

    async def open(
        self, broker: Broker, name: str, *, vhost: str, options: TailOptions
    ) -> TailSource:
        """An open source; NotFound, NotTappable or another BrokerError if it cannot be."""
