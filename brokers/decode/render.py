"""Turning bytes and parsed values into bounded display text.

Everything here is iterative, never recursive, and stops producing output once
it has ``limit`` characters, so a hostile structure costs at most ``limit`` work.
"""

from __future__ import annotations

import base64
import codecs
import math
import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from json.encoder import encode_basestring  # json.dumps(text, ensure_ascii=False), in C

# C0 and C1 control characters and DEL, except tab, newlines, form feed and
# ESC (ANSI colours are common in log lines). Their share decides "text".
_CONTROL = re.compile(r"[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f]")
_ASCII = bytes(c if 0x20 <= c < 0x7F else 0x2E for c in range(256))
# A \uD800-\uDFFF escape not part of a pair: json.loads turns it into a lone
# surrogate, which cannot be encoded as UTF-8 and breaks any HTTP response.
_LONE_SURROGATE = re.compile(
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)


def hexdump(data: bytes, limit: int) -> str:
    """A ``hexdump -C`` style dump of at most ``limit`` bytes of ``data``."""
    view = data[: max(limit, 0)]
    lines = []
    for offset in range(0, len(view), 16):
        chunk = view[offset : offset + 16]
        digits = chunk.hex(" ")
        ascii_ = chunk.translate(_ASCII).decode("ascii")
        lines.append(f"{offset:08x}  {digits[:23]:<23}  {digits[24:]:<23}  |{ascii_}|")
    return "\n".join(lines)


def utf8_prefix(data: bytes, max_bytes: int) -> tuple[str | None, int | None]:
    """Decode at most ``max_bytes`` of ``data``: ``(text, None)`` or ``(None, bad_offset)``.

    A character cut by the end of the prefix is dropped rather than an error,
    so a huge body is judged by its start without copying all of it.
    """
    final = len(data) <= max_bytes
    try:
        text, _ = codecs.utf_8_decode(memoryview(data)[:max_bytes], "strict", final)
    except UnicodeDecodeError as exc:
        return None, exc.start
    return text, None


def control_count(text: str) -> int:
    return len(_CONTROL.findall(text))


def is_mostly_printable(text: str) -> bool:
    """At most one control character in twenty; see ``_CONTROL`` for which count."""
    return control_count(text) * 20 <= len(text)


def fix_lone_surrogates(json_text: str) -> str:
    return _LONE_SURROGATE.sub(r"\\ufffd", json_text)


def bytes_marker(data: bytes) -> dict[str, object]:
    return {"$bytes": base64.b64encode(data).decode("ascii")}


def aware(moment: datetime) -> datetime:
    """AMQP timestamps arrive naive but are UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def as_datetime(value: object) -> datetime | None:
    """A datetime, ISO string or epoch number (seconds, or ms when huge) as aware UTC."""
    if isinstance(value, datetime):
        return aware(value)
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        try:
            return aware(datetime.fromisoformat(value.strip()[:64]))
        except ValueError:
            return None
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        seconds = float(value)
        if not math.isfinite(seconds):
            return None
        if abs(seconds) > 1e11:  # later than year 5138 as seconds: milliseconds
            seconds /= 1000
        try:
            return datetime.fromtimestamp(seconds, tz=UTC)
        except (OverflowError, OSError, ValueError):
            return None
    return None


def json_leaf(value: object) -> str:
    """JSON text of a scalar from ``json.loads`` or a JSON-safe conversion.

    The same text as ``json.dumps(value, ensure_ascii=False)``, from the json module's
    own string encoder and number reprs: ``json.dumps`` with a non-default option
    builds a new encoder per call, which cost more than the rest of a small record.
    """
    if isinstance(value, str):
        return encode_basestring(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float_text(value)
    return display_leaf(value)


def _float_text(value: float) -> str:
    """As ``json.dumps`` writes a float (it allows NaN and the infinities)."""
    if value != value:
        return "NaN"
    if value == math.inf:
        return "Infinity"
    if value == -math.inf:
        return "-Infinity"
    return float.__repr__(value)


def display_leaf(value: object) -> str:
    """Readable text for header-table scalars, which are not all JSON types."""
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + raw.hex()
        return encode_basestring(text) if text.isprintable() else "0x" + raw.hex()
    if isinstance(value, datetime):
        return aware(value).isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str | bool | int | float) or value is None:
        return json_leaf(value)
    return f"<{type(value).__name__}>"


def text_of(value: object) -> str | None:
    """A header string as ``str``: libraries hand out ``str`` or ``bytes``."""
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8", "replace")
    return None


def key_text(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return display_leaf(key)


_END = object()
_SCALARS = frozenset({str, int, float, bool, type(None)})


class _Frame:
    __slots__ = ("first", "items", "level", "mapping")

    def __init__(self, items: Iterator[object], mapping: bool, level: int) -> None:
        self.items = items
        self.mapping = mapping
        self.level = level
        self.first = True


def render(
    value: object,
    limit: int,
    *,
    indent: int | None = 2,
    leaf: Callable[[object], str] = json_leaf,
) -> tuple[str, bool]:
    """Like ``json.dumps(value, indent=indent, ensure_ascii=False)``, cut at ``limit``.

    Returns ``(text, truncated)``. Iterative, so nesting depth cannot raise
    ``RecursionError``, and it stops early, so a huge value costs ``limit``.
    """
    parts: list[str] = []
    used = 0
    stack: list[_Frame] = []
    pending: object = value
    has_pending = True
    while True:
        if has_pending:
            has_pending = False
            level = stack[-1].level if stack else 0
            # What json.loads and msgpack give is told by its exact type; others by isinstance.
            kind = type(pending)
            if kind in _SCALARS:
                piece = leaf(pending)
            elif kind is dict or (kind is not list and isinstance(pending, Mapping)):
                piece = "{" if pending else "{}"
                if pending:
                    stack.append(_Frame(iter(pending.items()), True, level + 1))  # type: ignore[attr-defined]
            elif isinstance(pending, list | tuple):
                piece = "[" if pending else "[]"
                if pending:
                    stack.append(_Frame(iter(pending), False, level + 1))
            else:
                piece = leaf(pending)
            parts.append(piece)
            used += len(piece)
            if used > limit:
                break
        if not stack:
            break
        frame = stack[-1]
        item = next(frame.items, _END)
        if item is _END:
            stack.pop()
            close = "}" if frame.mapping else "]"
            piece = close if indent is None else "\n" + " " * (indent * (frame.level - 1)) + close
        else:
            comma = "" if frame.first else ","
            if indent is None:
                piece = comma if frame.first else comma + " "
            else:
                piece = comma + "\n" + " " * (indent * frame.level)
            frame.first = False
            if frame.mapping and isinstance(item, tuple):
                piece += encode_basestring(key_text(item[0])) + ": "
                pending = item[1]
            else:
                pending = item
            has_pending = True
        parts.append(piece)
        used += len(piece)
        if used > limit:
            break
    text = "".join(parts)
    if len(text) > limit:
        return text[:limit], True
    return text, False
