"""How a letter's body is edited in the browser, and the edited text turned back into bytes.

A body is edited in one of four encodings, and sent back in its own format:

* ``text``: UTF-8 text, edited as it is;
* ``msgpack``: a MessagePack body whose values all have a JSON form, edited as
  JSON and packed back into MessagePack on submit (same content type);
* ``base64`` or ``hex``: any other bytes (the user picks; base64 first).

:class:`EditError` names the form field (``body`` or ``headers``) a wrong
value came from, so the form can show the error next to it.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

import msgpack

from brokers.base import validate
from brokers.decode.body import MSGPACK_TYPES, media_type
from dashboard.core.params import InvalidInput

TEXT, MSGPACK, BASE64, HEX = "text", "msgpack", "base64", "hex"
BINARY = (BASE64, HEX)
ENCODINGS = (TEXT, MSGPACK, BASE64, HEX)
NAMES = {
    TEXT: "text",
    MSGPACK: "MessagePack, edited as JSON (sent back as MessagePack)",
    BASE64: "binary, edited as base64",
    HEX: "binary, edited as hex",
}


class EditError(InvalidInput):
    """An edited field that cannot be sent; ``field`` is ``body`` or ``headers``."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class BodyForm:
    """The edit box's first content and the encoding it is in."""

    encoding: str
    text: str

    @property
    def binary(self) -> bool:
        return self.encoding in BINARY


def _json_safe(value: Any, depth: int = 0) -> bool:
    """True when ``value`` (from MessagePack) has the same value as JSON."""
    if depth > 100:
        return False
    if value is None or isinstance(value, bool | int | str):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_json_safe(v, depth + 1) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _json_safe(v, depth + 1) for k, v in value.items())
    return False


def _unpack(body: bytes) -> Any:
    """The MessagePack value of ``body`` if it has a JSON form (else ``ValueError``)."""
    try:
        value = msgpack.unpackb(body, raw=False, strict_map_key=False)
    except (ValueError, TypeError, OverflowError, RecursionError, msgpack.UnpackException) as exc:
        raise ValueError(str(exc)) from None
    if not _json_safe(value):
        raise ValueError("not every value has a JSON form")
    return value


def body_form(body: bytes, *, content_type: str, decoded_format: str) -> BodyForm:
    """How to edit ``body``: MessagePack as JSON, UTF-8 as text, other bytes as base64."""
    if media_type(content_type) in MSGPACK_TYPES or decoded_format == "msgpack":
        try:
            value = _unpack(body)
        except ValueError:
            pass
        else:
            return BodyForm(MSGPACK, json.dumps(value, indent=2, ensure_ascii=False))
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return BodyForm(BASE64, base64.b64encode(body).decode("ascii"))
    return BodyForm(TEXT, text)


def body_bytes(text: str, encoding: str) -> bytes:
    """The bytes to send for the edited ``text`` in ``encoding``; EditError if it is wrong."""
    if encoding == MSGPACK:
        try:
            value = json.loads(text)
        except ValueError as exc:
            raise EditError("body", f"the body is not valid JSON: {exc}") from None
        try:
            packed: bytes = msgpack.packb(value, use_bin_type=True)
        except (TypeError, ValueError, OverflowError) as exc:
            raise EditError("body", f"the body cannot be MessagePack: {exc}") from None
        return packed
    if encoding == BASE64:
        try:
            return base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError) as exc:
            raise EditError("body", f"the body is not valid base64: {exc}") from None
    if encoding == HEX:
        try:
            return bytes.fromhex(text)
        except ValueError as exc:
            raise EditError("body", f"the body is not valid hex: {exc}") from None
    if encoding != TEXT:
        raise EditError("body", f"unknown body encoding {encoding!r}")
    # Browsers send a textarea's line breaks as CRLF; the message had its own.
    try:
        return validate.utf8(text.replace("\r\n", "\n"), "body")
    except validate.InvalidValue as exc:
        raise EditError("body", exc.message) from None


def parse_headers(text: Any) -> Any:
    """Edited headers from a form's JSON text (or a JSON value); EditError names the field."""
    if text is None or not isinstance(text, str):
        return text
    if not text.strip():
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise EditError("headers", f"the headers are not valid JSON: {exc}") from None
