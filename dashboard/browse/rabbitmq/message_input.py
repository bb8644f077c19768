"""Turning what a user typed into a message to publish; InvalidInput says what is wrong.

Header values are JSON, with tagged objects for the AMQP types JSON lacks:
``{"$bytes": base64}``, ``{"$decimal": "1.50"}``, ``{"$timestamp": ISO 8601 or
epoch seconds}``; ``null`` is void. Floats that would not survive pamqp's
32-bit encoding are refused rather than silently changed.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import struct
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from brokers.base import validate
from brokers.rabbitmq.models import OutgoingMessage
from dashboard.core.params import InvalidInput

BODY_ENCODINGS = ("text", "json", "base64")
SHORT_STRING = 255  # bytes of an AMQP short string (routing keys, most properties)
MAX_DEPTH = 32
_SHORT_PROPERTIES = (
    "content_type",
    "content_encoding",
    "correlation_id",
    "reply_to",
    "message_id",
    "type",
    "user_id",
    "app_id",
)


def _short(name: str, value: object) -> str:
    text = str(value)
    if len(validate.utf8(text, name)) > SHORT_STRING:
        raise InvalidInput(f"{name} is longer than {SHORT_STRING} bytes")
    return text


def header_value(value: object, where: str, depth: int = 0) -> object:
    """A JSON value as the AMQP field value it stands for.

    ``{"$bytes": base64}`` is a byte array, ``{"$decimal": "1.50"}`` a decimal,
    ``{"$timestamp": ISO 8601 or epoch seconds}`` a timestamp; ``null`` is void.
    """
    if depth > MAX_DEPTH:
        raise InvalidInput(f"header {where} is nested more than {MAX_DEPTH} deep")
    if isinstance(value, Mapping):
        if len(value) == 1:
            ((tag, inner),) = value.items()
            if tag in ("$bytes", "$decimal", "$timestamp"):
                return _tagged(tag, inner, where)
        return {str(k): header_value(v, f"{where}.{k}", depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [header_value(v, f"{where}[{i}]", depth + 1) for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise InvalidInput(f"header {where}: {value} does not fit AMQP's 64-bit integers")
        return value
    if isinstance(value, float):
        # pamqp writes floats as 32-bit: refuse what would silently change.
        if not math.isfinite(value) or struct.unpack("f", struct.pack("f", value))[0] != value:
            raise InvalidInput(
                f"header {where}: {value!r} would lose precision as an AMQP float; send it as"
                f' {{"$decimal": "{value!r}"}} or as a string'
            )
        return value
    raise InvalidInput(f"header {where}: unsupported value {value!r}")


def _tagged(tag: str, inner: object, where: str) -> object:
    if tag == "$bytes":
        try:
            return bytearray(base64.b64decode(str(inner), validate=True))
        except (binascii.Error, ValueError):
            raise InvalidInput(f"header {where}: $bytes must be base64") from None
    if tag == "$decimal":
        try:
            number = Decimal(str(inner))
        except InvalidOperation:
            raise InvalidInput(f"header {where}: $decimal must be a decimal number") from None
        if not number.is_finite():
            raise InvalidInput(f"header {where}: $decimal must be finite")
        return number
    moment = parse_timestamp(inner, f"header {where}")
    return moment


def parse_timestamp(value: object, what: str) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(int(value), tz=UTC)
    try:
        moment = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise InvalidInput(f"{what}: give an ISO 8601 time or epoch seconds") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_headers(headers: object) -> dict[str, Any]:
    """Headers from a JSON object (or its text); see :func:`header_value`."""
    if headers in (None, ""):
        return {}
    if isinstance(headers, str):
        try:
            headers = json.loads(headers)
        except ValueError as exc:
            raise InvalidInput(f"headers must be a JSON object: {exc}") from None
    if not isinstance(headers, Mapping):
        raise InvalidInput("headers must be a JSON object")
    table = {str(k): header_value(v, str(k)) for k, v in headers.items()}
    validate.amqp_table(table)  # strings pamqp could not encode are a 400 naming the header
    return table


def parse_properties(raw: Mapping[str, object]) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name in _SHORT_PROPERTIES:
        value = raw.get(name)
        if value not in (None, ""):
            props[name] = _short(name, value)
    mode = raw.get("delivery_mode")
    if mode not in (None, ""):
        if str(mode) not in ("1", "2"):
            raise InvalidInput("delivery_mode must be 1 (transient) or 2 (persistent)")
        props["delivery_mode"] = int(str(mode))
    priority = raw.get("priority")
    if priority not in (None, ""):
        if not str(priority).isdigit() or int(str(priority)) > 255:
            raise InvalidInput("priority must be a whole number from 0 to 255")
        props["priority"] = int(str(priority))
    expiration = raw.get("expiration")
    if expiration not in (None, ""):
        if not str(expiration).isdigit():
            raise InvalidInput("expiration must be a whole number of milliseconds")
        props["expiration"] = str(expiration)
    timestamp = raw.get("timestamp")
    if timestamp not in (None, ""):
        now = str(timestamp).lower() == "now"
        props["timestamp"] = datetime.now(UTC) if now else parse_timestamp(timestamp, "timestamp")
    return props


def build_outgoing_message(
    *,
    exchange: str,
    routing_key: str,
    body: str,
    body_encoding: str = "text",
    headers: object = None,
    properties: Mapping[str, object] | None = None,
) -> OutgoingMessage:
    """Validate what a user typed into a message; InvalidInput says what is wrong."""
    if body_encoding not in BODY_ENCODINGS:
        raise InvalidInput(f"body_encoding must be one of {', '.join(BODY_ENCODINGS)}")
    props = parse_properties(properties or {})
    if body_encoding == "base64":
        try:
            data = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("the body is not valid base64") from None
    else:
        if body_encoding == "json":
            try:
                json.loads(body)
            except ValueError as exc:
                raise InvalidInput(f"the body is not valid JSON: {exc}") from None
            props.setdefault("content_type", "application/json")
        data = validate.utf8(body, "body")
    return OutgoingMessage(
        exchange=_short("exchange", exchange),
        routing_key=_short("routing_key", routing_key),
        body=data,
        headers=parse_headers(headers),
        properties=props,
    )
