"""Header tables (AMQP field tables and Kafka header lists) and RabbitMQ's ``x-death``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from itertools import islice

from .model import DeathEvent, HeaderValue
from .render import (
    as_datetime,
    aware,
    control_count,
    display_leaf,
    key_text,
    render,
    text_of,
)

Headers = Mapping[str, object] | Iterable[tuple[str, object]]

MAX_HEADERS = 10_000
# Keys whose 4- or 8-byte values are big-endian integers, as Spring Kafka writes
# kafka_dlt-original-partition/-offset/-timestamp and kafka_deliveryAttempt.
_INT_HINTS = ("partition", "offset", "timestamp", "attempt")
_NO_TIME = datetime.min.replace(tzinfo=UTC)
_EMPTY = DeathEvent(None, None, None, None, None)


def header_pairs(headers: object) -> list[tuple[str, object]]:
    """``(key, value)`` pairs from a mapping or a Kafka-style list; junk is skipped."""
    if headers is None or isinstance(headers, str | bytes | bytearray | memoryview):
        return []
    items: Iterable[object]
    if isinstance(headers, Mapping):
        items = headers.items()
    elif isinstance(headers, Iterable):
        items = headers
    else:
        return []
    pairs = []
    for item in islice(items, MAX_HEADERS + 1):
        if isinstance(item, tuple | list) and len(item) == 2:
            pairs.append((key_text(item[0]), item[1]))
    return pairs


def decode_headers(headers: Headers | None, *, limit: int = 1024) -> tuple[HeaderValue, ...]:
    """Rows for a header table, in order, repeated keys kept; each display at most ``limit``."""
    pairs = header_pairs(headers)
    rows = [_row(key, value, max(limit, 16)) for key, value in pairs[:MAX_HEADERS]]
    if len(pairs) > MAX_HEADERS:
        rows.append(
            HeaderValue("…", "note", f"more than {MAX_HEADERS} headers; the rest not shown")
        )
    return tuple(rows)


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _row(key: str, value: object, limit: int) -> HeaderValue:
    if value is None:
        return HeaderValue(key, "null", "null")
    if isinstance(value, bool):
        return HeaderValue(key, "bool", "true" if value else "false")
    if isinstance(value, int):
        try:
            return HeaderValue(key, "int", _cut(str(value), limit))
        except ValueError:  # more digits than int -> str allows
            return HeaderValue(key, "int", _cut(hex(value), limit))
    if isinstance(value, float):
        return HeaderValue(key, "float", repr(value))
    if isinstance(value, Decimal):
        return HeaderValue(key, "decimal", _cut(str(value), limit))
    if isinstance(value, datetime):
        return HeaderValue(key, "timestamp", aware(value).isoformat())
    if isinstance(value, str):
        return HeaderValue(key, "string", _cut(value, limit))
    if isinstance(value, bytes | bytearray | memoryview):
        return _bytes_row(key, bytes(value), limit)
    if isinstance(value, Mapping):
        text, cut = render(value, limit, indent=None, leaf=display_leaf)
        return HeaderValue(key, "table", text + "…" if cut else text)
    if isinstance(value, list | tuple):
        text, cut = render(value, limit, indent=None, leaf=display_leaf)
        return HeaderValue(key, "array", text + "…" if cut else text)
    return HeaderValue(key, type(value).__name__, f"<{type(value).__name__}>")


def _bytes_row(key: str, raw: bytes, limit: int) -> HeaderValue:
    lowered = key.lower()
    if len(raw) in (4, 8) and any(hint in lowered for hint in _INT_HINTS):
        number = int.from_bytes(raw, "big", signed=True)
        display = str(number)
        moment = as_datetime(number) if "timestamp" in lowered else None
        if moment is not None:
            display += f" ({moment.isoformat()})"
        return HeaderValue(key, "bytes", f"{display}  [0x{raw.hex()}]", as_int=number)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        if control_count(text) == 0:
            return HeaderValue(key, "bytes", _cut(text, limit))
    shown = "0x" + raw[: limit // 2].hex()
    return HeaderValue(key, "bytes", shown + "…" if len(raw) > limit // 2 else shown)


def decode_x_death(headers: Headers | None) -> tuple[DeathEvent, ...]:
    """RabbitMQ's dead-letter history, oldest first; events without a time go last.

    RabbitMQ keeps one ``x-death`` entry per (queue, reason), newest first, with
    a ``count``. Without ``x-death`` the ``x-first-death-*`` and
    ``x-last-death-*`` headers give at most two events with no count or time.
    """
    found: dict[str, object] = {}
    for key, value in header_pairs(headers):
        found.setdefault(key.lower(), value)
    events: list[tuple[int, DeathEvent]] = []
    entries = found.get("x-death")
    if isinstance(entries, list | tuple):
        for index, entry in enumerate(entries[:MAX_HEADERS]):
            event = _event(entry) if isinstance(entry, Mapping) else None
            if event is not None and event != _EMPTY:
                events.append((-index, event))
    if not events:
        for index, prefix in enumerate(("x-first-death-", "x-last-death-")):
            event = DeathEvent(
                queue=text_of(found.get(prefix + "queue")),
                reason=text_of(found.get(prefix + "reason")),
                count=None,
                time=None,
                exchange=text_of(found.get(prefix + "exchange")),
            )
            known = (event.queue, event.reason, event.exchange)
            if any(part is not None for part in known) and (not events or events[0][1] != event):
                events.append((index, event))
    events.sort(key=lambda pair: (pair[1].time is None, pair[1].time or _NO_TIME, pair[0]))
    return tuple(event for _, event in events)


def _event(entry: Mapping[object, object]) -> DeathEvent:
    fields = {key_text(key).lower(): value for key, value in islice(entry.items(), 100)}
    count = fields.get("count")
    keys = fields.get("routing-keys")
    if isinstance(keys, list | tuple):
        routing = tuple(text for text in map(text_of, keys[:1000]) if text is not None)
    else:
        single = text_of(keys)
        routing = (single,) if single is not None else ()
    expiration = fields.get("original-expiration")
    return DeathEvent(
        queue=text_of(fields.get("queue")),
        reason=text_of(fields.get("reason")),
        count=count if isinstance(count, int) and not isinstance(count, bool) else None,
        time=as_datetime(fields.get("time")),
        exchange=text_of(fields.get("exchange")),
        routing_keys=routing,
        original_expiration=(
            str(expiration) if isinstance(expiration, int) else text_of(expiration)
        ),
    )
