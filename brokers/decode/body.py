"""Detecting what a message body is and making it fit to show."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from operator import itemgetter
from typing import Any

import msgpack

from .celery_task import is_task_headers, task_v1, task_v2
from .headers import Headers, header_pairs
from .model import CeleryTask, Decoded, ProtoField
from .protobuf import describe, json_safe, parse_with_reason
from .render import (
    bytes_marker,
    control_count,
    fix_lone_surrogates,
    hexdump,
    is_mostly_printable,
    key_text,
    render,
    utf8_prefix,
)

PARSE_LIMIT = 1 << 20  # bodies up to this size are parsed as JSON/MessagePack
DEFAULT_LIMIT = 65536

JSON_TYPES = frozenset({"application/json", "text/json"})
MSGPACK_TYPES = frozenset(
    {"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}
)
PICKLE_TYPES = frozenset({"application/x-python-serialize", "application/python-pickle"})
PROTOBUF_TYPES = frozenset(
    {"application/protobuf", "application/x-protobuf", "application/vnd.google.protobuf"}
)
_PLAIN_ENCODINGS = frozenset({"", "utf-8", "utf8", "binary", "identity", "ascii", "us-ascii"})
_LOOKS_JSON = re.compile(rb"(?:\xef\xbb\xbf)?[ \t\r\n]*[\[{]")
_MSGPACK_CONTAINER = frozenset(range(0x80, 0xA0)) | {0xDC, 0xDD, 0xDE, 0xDF}
_NEEDS_CONVERSION = frozenset({bytes, datetime})


@dataclass
class _Parsed:
    ok: bool
    value: object = None
    error: str = ""
    notes: list[str] = field(default_factory=list)


def decode_body(
    data: bytes | bytearray | memoryview | None,
    *,
    content_type: str | None = None,
    content_encoding: str | None = None,
    headers: Headers | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Decoded:
    """Decode a message body, key or value for display. Never raises on any bytes."""
    if data is None:
        return Decoded("null", 0)
    if not isinstance(data, bytes):
        data = bytes(data)
    if not data:
        return Decoded("empty", 0)
    limit = max(limit, 0)
    if content_type is None and content_encoding is None and not headers:
        # Nothing but the bytes to go by (most Kafka keys and values).
        return _sniffed(data, limit, [])
    media = media_type(content_type)
    hdrs = dict(header_pairs(headers))
    notes: list[str] = []
    encoding = key_text(content_encoding or "").strip().lower()
    if encoding not in _PLAIN_ENCODINGS:
        notes.append(f"content encoding {encoding!r} not undone")
    compression = hdrs.get("compression")
    if isinstance(compression, str | bytes) and compression:
        notes.append(f"compressed ({key_text(compression)}); not decompressed")

    if is_task_headers(hdrs):
        decoded = _celery_v2(data, media, hdrs, limit, notes)
        if decoded is not None:
            return decoded
    if media in JSON_TYPES or media.endswith("+json"):
        decoded = _structured(data, "json", limit, notes, claim="content type says JSON")
        if decoded is not None:
            return decoded
    elif media in MSGPACK_TYPES:
        claim = "content type says MessagePack"
        found = "MessagePack detected by content type"
        decoded = _structured(data, "msgpack", limit, notes, claim=claim, found=found)
        if decoded is not None:
            return decoded
    elif media in PROTOBUF_TYPES:
        # Trusted over the text check: a message of printable strings is still Protobuf.
        fields, reason = parse_with_reason(data) if len(data) <= limit else (None, "")
        if fields is not None:
            return _protobuf(data, fields, limit, notes)
        notes.append(
            reason or "content type says Protobuf but it does not parse (or is over limit)"
        )
    elif media in PICKLE_TYPES:
        notes.append("Python pickle: not unpickled, which would run code")
    else:
        return _sniffed(data, limit, notes)
    return _plain(data, limit, notes)


def _sniffed(data: bytes, limit: int, notes: list[str]) -> Decoded:
    """No content type says what the bytes are: JSON or MessagePack when they parse
    as one, else text, Protobuf or a hex dump (:func:`_plain`)."""
    if _LOOKS_JSON.match(data):
        decoded = _structured(data, "json", limit, notes)
        if decoded is not None:
            return decoded
    if (
        2 <= len(data) <= PARSE_LIMIT
        and data[0] in _MSGPACK_CONTAINER
        and utf8_prefix(data, 8)[0] is None
    ):
        found = "MessagePack detected from the bytes"
        decoded = _structured(data, "msgpack", limit, [*notes], found=found)
        if decoded is not None:
            return decoded
    return _plain(data, limit, notes)


def media_type(content_type: str | bytes | None) -> str:
    """``"application/json"`` from ``"Application/JSON; charset=utf-8"``."""
    return key_text(content_type or "").split(";", 1)[0].strip().lower()


def _join(notes: list[str]) -> str:
    """The notes that say something, once each, in order."""
    return "; ".join(dict.fromkeys(filter(None, notes))) if any(notes) else ""


def _celery_v2(
    data: bytes, media: str, headers: Mapping[str, object], limit: int, notes: list[str]
) -> Decoded | None:
    kind = "msgpack" if media in MSGPACK_TYPES else "json"
    if media in PICKLE_TYPES:
        notes.append("Celery body is a Python pickle: arguments not decoded and never unpickled")
        opaque = Decoded("binary", len(data), len(data) > limit, hexdump(data, limit))
        return _with_task(opaque, task_v2(headers, None, parsed=False), _join(notes))
    if media and media not in JSON_TYPES and media not in MSGPACK_TYPES:
        notes.append(f"Celery body is {media}: arguments not decoded")
        return _with_task(_plain(data, limit, notes), task_v2(headers, None, parsed=False))
    if len(data) > PARSE_LIMIT:
        notes.append(f"Celery body larger than {PARSE_LIMIT} bytes: arguments not decoded")
        return _with_task(_plain(data, limit, notes), task_v2(headers, None, parsed=False))
    parsed = _parse(data, kind)
    if not parsed.ok:
        notes.append(f"Celery headers but the body is not {kind}: {parsed.error}")
        return _with_task(_plain(data, limit, notes), task_v2(headers, None, parsed=False))
    task = task_v2(headers, parsed.value, parsed=True)
    if task is None:
        notes.append("Celery headers but the body is not [args, kwargs, embed]")
        return None
    text, truncated = render(parsed.value, limit)
    return Decoded(
        "celery",
        len(data),
        truncated,
        text,
        parsed.value,
        celery=task,
        note=_join([*notes, *parsed.notes]),
    )


def _with_task(decoded: Decoded, task: CeleryTask | None, note: str | None = None) -> Decoded:
    return Decoded(
        "celery",
        decoded.size,
        decoded.truncated,
        decoded.text,
        decoded.value,
        celery=task,
        note=decoded.note if note is None else note,
    )


def _structured(
    data: bytes,
    kind: str,
    limit: int,
    notes: list[str],
    *,
    claim: str | None = None,
    found: str = "",
) -> Decoded | None:
    """Parse as ``kind``; on failure note why (when the content type claimed it) and
    return ``None`` so the caller falls back to text or hex."""
    if len(data) > PARSE_LIMIT:
        what = claim or "looks like JSON"
        notes.append(f"{what} but is larger than {PARSE_LIMIT} bytes: not parsed")
        return None
    parsed = _parse(data, kind)
    if not parsed.ok:
        if claim is not None or parsed.error.startswith("nested"):
            notes.append(f"{claim or 'looks like JSON'} but {parsed.error}")
        return None
    text, truncated = render(parsed.value, limit)
    task = task_v1(parsed.value)
    return Decoded(
        "celery" if task else kind,
        len(data),
        truncated,
        text,
        parsed.value,
        celery=task,
        note=_join([*notes, found, *parsed.notes]),
    )


def _parse(data: bytes, kind: str) -> _Parsed:
    return _parse_json(data) if kind == "json" else _parse_msgpack(data)


def _parse_json(data: bytes) -> _Parsed:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _Parsed(False, error=f"invalid UTF-8 at byte {exc.start}")
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\\u" in text:
        text = fix_lone_surrogates(text)
    try:
        return _Parsed(True, json.loads(text))
    except RecursionError:
        return _Parsed(False, error="nested too deeply to parse")
    except ValueError as exc:  # JSONDecodeError, or an int with too many digits
        return _Parsed(False, error=f"does not parse ({exc})")


def _parse_msgpack(data: bytes) -> _Parsed:
    notes: list[str] = []
    options: dict[str, Any] = {
        "raw": False,
        "strict_map_key": False,
        "timestamp": 3,
        "list_hook": _mp_list,
        "object_pairs_hook": _mp_map,
        "ext_hook": _mp_ext,
    }
    try:
        try:
            value = msgpack.unpackb(data, **options)
        except UnicodeDecodeError:
            value = msgpack.unpackb(data, unicode_errors="replace", **options)
            notes.append("invalid UTF-8 in MessagePack strings replaced")
    except (ValueError, TypeError, OverflowError, RecursionError, msgpack.UnpackException) as exc:
        return _Parsed(False, error=f"does not parse ({exc})")
    return _Parsed(True, _mp_leaf(value), notes=notes)


def _mp_leaf(value: object) -> object:
    if isinstance(value, bytes):
        return bytes_marker(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _mp_list(items: list[object]) -> list[object]:
    """Called by msgpack for every array; copies only when something needs converting."""
    if _NEEDS_CONVERSION.isdisjoint(map(type, items)):
        return items
    return [_mp_leaf(item) for item in items]


def _mp_map(pairs: list[tuple[object, object]]) -> dict[str, object]:
    """Called by msgpack for every map; the common all-string case stays in C."""
    if set(map(type, map(itemgetter(0), pairs))) <= {str} and _NEEDS_CONVERSION.isdisjoint(
        map(type, map(itemgetter(1), pairs))
    ):
        return dict(pairs)  # type: ignore[arg-type]  # keys were just checked to be str
    return {_mp_key(key): _mp_leaf(value) for key, value in pairs}


def _mp_key(key: object) -> str:
    """MessagePack keys may be any type; JSON keys must be strings."""
    if isinstance(key, str):
        return key
    if isinstance(key, list | dict):
        return render(key, 256, indent=None)[0]
    if isinstance(key, bytes):
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            return "0x" + key[:128].hex()
    return key_text(_mp_leaf(key))


def _mp_ext(code: int, payload: bytes) -> dict[str, object]:
    return {"$ext": code, **bytes_marker(payload)}


def _plain(data: bytes, limit: int, notes: list[str]) -> Decoded:
    """Text, else Protobuf, else a hex dump."""
    size = len(data)
    text, bad_at = utf8_prefix(data, limit * 4)
    controls = 0
    truncated = False
    if text is not None:
        truncated = size > limit * 4 or len(text) > limit
        text = text[:limit]
        controls = control_count(text)
        if controls == 0:
            return Decoded("text", size, truncated, text, note=_join(notes))
    if size <= limit:
        fields, reason = parse_with_reason(data)
        notes.append(reason)
        if fields is not None:
            return _protobuf(data, fields, limit, notes)
    if text is not None and is_mostly_printable(text):
        notes.append(f"{controls} control characters")
        return Decoded("text", size, truncated, text, note=_join(notes))
    if text is None:
        notes.append(f"invalid UTF-8 at byte {bad_at}; shown as hex")
    else:
        notes.append(f"{controls} control characters; shown as hex")
    return Decoded("binary", size, size > limit, hexdump(data, limit), note=_join(notes))


def _protobuf(data: bytes, fields: tuple[ProtoField, ...], limit: int, notes: list[str]) -> Decoded:
    text = "\n".join(describe(fields))
    notes.append("Protobuf without a schema: field types are guesses")
    return Decoded(
        "protobuf",
        len(data),
        len(text) > limit,
        text[:limit],
        json_safe(fields),
        protobuf=fields,
        note=_join(notes),
    )
