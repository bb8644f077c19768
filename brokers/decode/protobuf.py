"""Schemaless Protobuf: reading the wire format by hand, like ``protoc --decode_raw``.

Without the schema the result is a guess: a length-delimited field is shown as
a nested message when it parses as one, else as text or bytes. Recursion stops
at :data:`MAX_DEPTH` and the whole parse gives up after :data:`MAX_FIELDS`
fields (counting fields of nested attempts that failed), so hostile input costs
bounded work.
"""

from __future__ import annotations

import json
import struct

from .model import ProtoField
from .render import bytes_marker, is_mostly_printable

MAX_DEPTH = 8
MAX_FIELDS = 10_000
MAX_FIELD_NUMBER = (1 << 29) - 1


class _TooManyFields(Exception):
    """Raised through the recursion to abandon the whole parse at once."""


def parse_protobuf(data: bytes) -> tuple[ProtoField, ...] | None:
    """The fields of ``data`` if all of it is a plausible message with at least one field."""
    return parse_with_reason(data)[0]


def parse_with_reason(data: bytes) -> tuple[tuple[ProtoField, ...] | None, str]:
    """Like :func:`parse_protobuf`, plus why a parse that looked promising was abandoned."""
    budget = [MAX_FIELDS]
    try:
        fields = _message(data, 0, len(data), 0, budget)
    except _TooManyFields:
        return None, f"Protobuf parse abandoned after {MAX_FIELDS} fields"
    return fields or None, ""


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int] | None:
    result = 0
    shift = 0
    while pos < end and shift < 64:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result, pos) if result < 1 << 64 else None
        shift += 7
    return None


def _message(
    data: bytes, pos: int, end: int, depth: int, budget: list[int]
) -> tuple[ProtoField, ...] | None:
    fields: list[ProtoField] = []
    while pos < end:
        read = _varint(data, pos, end)
        if read is None:
            return None
        key, pos = read
        number, wire_type = key >> 3, key & 7
        if not 1 <= number <= MAX_FIELD_NUMBER:
            return None
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooManyFields
        if wire_type == 0:
            read = _varint(data, pos, end)
            if read is None:
                return None
            value, pos = read
            signed = value - (1 << 64) if value >= 1 << 63 else None
            zigzag = (value >> 1) ^ -(value & 1)
            fields.append(ProtoField(number, 0, value, signed=signed, zigzag=zigzag))
        elif wire_type in (1, 5):
            width = 8 if wire_type == 1 else 4
            if end - pos < width:
                return None
            chunk = data[pos : pos + width]
            pos += width
            value = int.from_bytes(chunk, "little")
            top = 1 << (width * 8 - 1)
            signed = value - 2 * top if value >= top else None
            (as_float,) = struct.unpack("<d" if width == 8 else "<f", chunk)
            fields.append(ProtoField(number, wire_type, value, signed=signed, as_float=as_float))
        elif wire_type == 2:
            read = _varint(data, pos, end)
            if read is None or read[0] > end - read[1]:
                return None
            length, pos = read
            payload = _length_delimited(data, pos, pos + length, depth, budget)
            fields.append(ProtoField(number, 2, payload))
            pos += length
        else:  # 3 and 4 are deprecated groups, 6 and 7 do not exist
            return None
    return tuple(fields)


def _length_delimited(
    data: bytes, start: int, end: int, depth: int, budget: list[int]
) -> str | bytes | tuple[ProtoField, ...]:
    """Text that is entirely printable wins over a nested message: short strings
    such as ``"hi"`` happen to be valid messages too."""
    raw = data[start:end]
    try:
        text: str | None = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None and text.isprintable():
        return text
    if depth + 1 < MAX_DEPTH:
        nested = _message(data, start, end, depth + 1, budget)
        if nested:
            return nested
    if text is not None and is_mostly_printable(text):
        return text
    return raw


def describe(fields: tuple[ProtoField, ...], indent: int = 0) -> list[str]:
    """Display lines such as ``1 <varint> 150  zigzag=75``, nested by indentation.

    Iterative over an explicit stack; depth is bounded by the parser anyway.
    """
    lines: list[str] = []
    stack: list[tuple[tuple[ProtoField, ...], int, int]] = [(fields, 0, indent)]
    while stack:
        group, index, level = stack.pop()
        if index >= len(group):
            if level > indent:
                lines.append("  " * (level - 1) + "}")
            continue
        stack.append((group, index + 1, level))
        field = group[index]
        pad = "  " * level
        value = field.value
        if isinstance(value, tuple):
            lines.append(f"{pad}{field.number} <message> {{")
            stack.append((value, 0, level + 1))
            continue
        lines.append(f"{pad}{field.number} <{field.kind}> {_scalar(field)}")
    return lines


def _scalar(field: ProtoField) -> str:
    value = field.value
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bytes):
        return value.hex(" ") if value else '""'
    extra = []
    if field.signed is not None:
        extra.append(f"signed={field.signed}")
    if field.zigzag is not None:
        extra.append(f"zigzag={field.zigzag}")
    if field.as_float is not None:
        extra.append(f"{'double' if field.wire_type == 1 else 'float'}={field.as_float!r}")
    return f"{value}  {' '.join(extra)}" if extra else str(value)


def json_safe(fields: tuple[ProtoField, ...]) -> list[object]:
    """The field tree as plain lists and dicts, for ``Decoded.value``."""
    root: list[object] = []
    stack: list[tuple[tuple[ProtoField, ...], list[object]]] = [(fields, root)]
    while stack:
        group, out = stack.pop()
        for field in group:
            entry: dict[str, object] = {"field": field.number, "kind": field.kind}
            value = field.value
            if isinstance(value, tuple):
                children: list[object] = []
                entry["value"] = children
                stack.append((value, children))
            elif isinstance(value, bytes):
                entry["value"] = bytes_marker(value)
            else:
                entry["value"] = value
            for name in ("signed", "zigzag", "as_float"):
                extra = getattr(field, name)
                if extra is not None:
                    entry[name] = extra
            out.append(entry)
    return root
