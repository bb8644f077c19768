"""Reading the management API's loosely typed JSON into typed values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from brokers.base.validate import InvalidValue, utf8

DOT_SEGMENTS = (".", "..")


def quote_name(name: str, field: str = "name") -> str:
    """Quote a vhost, queue or exchange name as one management API path segment.

    ``.`` and ``..`` are refused: httpx removes such segments even when they are
    not percent-encoded, and RabbitMQ (3.10's cowboy) decodes ``%2E`` and removes
    them too, so ``vhost=..`` with ``name=definitions`` would read
    ``/api/definitions``. No encoding reaches an entity with such a name through
    the management API; AMQP clients still can.
    """
    utf8(name, field)  # quote() would raise UnicodeEncodeError on a lone surrogate
    if name in DOT_SEGMENTS:
        raise InvalidValue(
            field,
            f"{name!r} cannot be used with the RabbitMQ management API (it reads it as a"
            " relative path)",
        )
    return quote(name, safe="")


def as_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    return int(value) if isinstance(value, int | float) else None


def as_float(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    return float(value) if isinstance(value, int | float) else None


def as_bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def as_text(value: object) -> str:
    return value if isinstance(value, str) else ""


def as_mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
