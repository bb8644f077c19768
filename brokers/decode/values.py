"""Header and property values as JSON that can be turned back into the original.

A captured dead letter is stored as JSON (``DeadLetter.headers`` and
``.properties``) and may later be republished, so the conversion must be
reversible for every type a broker hands out. JSON strings, numbers, booleans,
null, lists and objects stay as they are; the rest is tagged with a one-key
object, the same tags the RabbitMQ JSON API reads:

* ``{"$bytes": base64}``: AMQP byte arrays, Kafka header values that are not
  UTF-8 text;
* ``{"$decimal": "1.50"}``: AMQP decimals;
* ``{"$timestamp": ISO 8601}``: AMQP timestamps (always aware UTC);
* ``{"$float": "nan"}``: floats JSON cannot hold (NaN, infinities);
* ``{"$string": base64}``: strings holding NUL, which PostgreSQL's JSON refuses.

An object with exactly one key that starts with ``$`` would be ambiguous, so a
real header table like that is wrapped as ``{"$table": {...}}``.

Kafka headers are an ordered list of pairs in which a key may repeat; they are
stored as ``[[key, value], ...]`` with ``value`` a string when the bytes are
UTF-8 text without control characters (which encodes back to the same
bytes), else tagged ``$bytes`` (Spring's binary integers are valid UTF-8 but
full of NULs), or null.
"""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

TAGS = ("$bytes", "$decimal", "$timestamp", "$float", "$string", "$table")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
MAX_DEPTH = 32  # AMQP tables nest; a hostile message must not exhaust the stack


def to_json(value: object, _depth: int = 0) -> Any:
    """An AMQP value as JSON-safe data (see the module docstring for the tags)."""
    kind = type(value)
    # Exact types first, what header tables are mostly made of (one per captured letter).
    if kind is str or kind is int or kind is bool or value is None:
        if kind is str and "\x00" in value:  # type: ignore[operator]
            return _tagged_string(value)  # type: ignore[arg-type]
        return value
    if kind is dict and _depth < MAX_DEPTH:
        return _table(value, _depth)  # type: ignore[arg-type]
    if kind is list and _depth < MAX_DEPTH:
        return [to_json(v, _depth + 1) for v in value]  # type: ignore[attr-defined]
    if isinstance(value, str):
        if "\x00" in value:
            return _tagged_string(value)
        return value
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": repr(value)}
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return {"$timestamp": moment.astimezone(UTC).isoformat()}
    if _depth >= MAX_DEPTH:
        return {"$bytes": ""}  # deeper than any real header; keep the key, drop the value
    if isinstance(value, Mapping):
        return _table(value, _depth)
    if isinstance(value, list | tuple):
        return [to_json(v, _depth + 1) for v in value]
    return str(value)


def _tagged_string(value: str) -> dict[str, str]:
    return {"$string": base64.b64encode(value.encode("utf-8", "surrogatepass")).decode()}


def _table(value: Mapping[Any, object], depth: int) -> dict[str, Any]:
    table = {str(k): to_json(v, depth + 1) for k, v in value.items()}
    if len(table) == 1 and next(iter(table)).startswith("$"):
        return {"$table": table}
    return table


def from_json(value: Any, _depth: int = 0) -> object:
    """The inverse of :func:`to_json`: byte arrays (as ``bytearray``, the type pamqp
    encodes as an AMQP byte array), Decimal and aware datetimes come back."""
    if isinstance(value, list):
        return [from_json(v, _depth + 1) for v in value] if _depth < MAX_DEPTH else []
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        tag, inner = next(iter(value.items()))
        if tag == "$bytes" and isinstance(inner, str):
            return bytearray(base64.b64decode(inner))
        if tag == "$decimal" and isinstance(inner, str):
            return Decimal(inner)
        if tag == "$timestamp" and isinstance(inner, str):
            return datetime.fromisoformat(inner)
        if tag == "$float" and isinstance(inner, str):
            return float(inner)
        if tag == "$string" and isinstance(inner, str):
            return base64.b64decode(inner).decode("utf-8", "surrogatepass")
        if tag == "$table" and isinstance(inner, dict):
            return {k: from_json(v, _depth + 1) for k, v in inner.items()}
    if _depth >= MAX_DEPTH:
        return {}
    return {k: from_json(v, _depth + 1) for k, v in value.items()}


def kafka_headers_to_json(headers: Iterable[tuple[str, bytes | None]] | None) -> list[list[Any]]:
    """Kafka's header list as ``[[key, str | {"$bytes": ...} | None], ...]``, order kept."""
    rows: list[list[Any]] = []
    for key, raw in headers or ():
        if raw is None:
            rows.append([key, None])
            continue
        try:
            text = bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and not _CONTROL.search(text):
            rows.append([key, text])
        else:
            rows.append([key, {"$bytes": base64.b64encode(bytes(raw)).decode("ascii")}])
    return rows


def kafka_headers_from_json(rows: Any) -> list[tuple[str, bytes | None]]:
    """The inverse of :func:`kafka_headers_to_json`: the exact bytes that were read."""
    headers: list[tuple[str, bytes | None]] = []
    for row in rows if isinstance(rows, list) else []:
        if not (isinstance(row, list) and len(row) == 2 and isinstance(row[0], str)):
            continue
        key, value = row
        if value is None:
            headers.append((key, None))
        elif isinstance(value, str):
            headers.append((key, value.encode("utf-8")))
        elif isinstance(value, dict) and isinstance(value.get("$bytes"), str):
            headers.append((key, base64.b64decode(value["$bytes"])))
    return headers
