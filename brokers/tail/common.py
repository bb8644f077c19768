"""What both taps hand out: decoded messages in batches, with what they skipped."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from brokers.base import BrokerError
from brokers.decode import Decoded, HeaderValue, decode_body, decode_headers
from brokers.decode.headers import Headers

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
