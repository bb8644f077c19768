"""Reading the management API's loosely typed JSON into typed values."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote


def quote_name(name: str) -> str:
    """Quote a vhost, queue or exchange name as one management API path segment."""
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
