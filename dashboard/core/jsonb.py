"""JSON for PostgreSQL's jsonb on the hot paths, by orjson, the same values as the standard library.

``encode_jsonb``: a value in jsonb's binary COPY format (a version byte, 1, and
the JSON text), what psycopg's ``Jsonb(value)`` sends: capture's COPY writes
three per letter. ``compact_json``: the collector's Redis snapshot, rewritten every sample (50,000
queues: several megabytes). ``load_json``: jsonb text as Python values, what psycopg's
default loader (``json.loads``) gives: a bulk requeue's claim reads two per
letter. Both are several times faster than the standard library; where orjson
would refuse a value, or give a different one, the standard library does it.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# Types orjson would encode where the standard library refuses (datetimes,
# dataclasses) or encodes differently (subclasses of str, int, dict, list) go
# to the standard library instead, so the stored JSON stays what it was.
_ORJSON_OPTIONS = (
    orjson.OPT_PASSTHROUGH_DATETIME
    | orjson.OPT_PASSTHROUGH_DATACLASS
    | orjson.OPT_PASSTHROUGH_SUBCLASS
)
# orjson reads an integer beyond 64 bits as a float (a different number); such a
# run of digits, or any as long in a string, sends the text to the standard library.
_LONG_DIGITS = re.compile(rb"[0-9]{20}")


def encode_jsonb(value: Any) -> bytes:
    """``value`` in jsonb's binary COPY format: what ``Jsonb(value)`` would send.

    orjson writes compact UTF-8 where ``json.dumps`` writes spaced ASCII; jsonb
    stores the parsed value, so the row is the same. What orjson refuses (lone
    surrogates, integers beyond 64 bits, non-string keys, the types above) goes
    through ``json.dumps`` as before, and fails as it did.
    """
    try:
        return b"\x01" + orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return b"\x01" + json.dumps(value).encode()


def load_json(data: str | bytes) -> Any:
    """jsonb's text as ``json.loads`` reads it (psycopg's loader for a connection)."""
    raw = data.encode() if isinstance(data, str) else data
    if _LONG_DIGITS.search(raw):
        return json.loads(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw)


def compact_json(value: Any) -> bytes:
    """``value`` as compact JSON (UTF-8), what ``json.dumps(value, separators=(",", ":"))``
    means once parsed; what orjson refuses goes through the standard library."""
    try:
        return orjson.dumps(value, option=_ORJSON_OPTIONS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":")).encode()
