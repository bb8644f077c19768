"""RabbitMQ results as JSON, and the queue a request names (``vhost`` and ``name``).

AMQP values JSON cannot carry are tagged, the same way the publish endpoint
reads them: ``{"$bytes": base64}``, ``{"$decimal": "1.50"}`` and, inside
headers, ``{"$timestamp": ISO 8601}``.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.http import HttpRequest

from dashboard.core.params import InvalidInput

# Properties returned next to a result's fields.
EXTRA = {
    "QueuePage": ("page_count", "has_next"),
    "QueueDetail": ("head_message_age",),
    "ExchangePage": ("page_count",),
    "ExchangeDetail": ("is_default",),
}


def queue_params(request: HttpRequest, what: str = "queue") -> tuple[str, str]:
    vhost, name = request.GET.get("vhost"), request.GET.get("name")
    if vhost is None or name is None:
        raise InvalidInput(f"a {what} needs the vhost and name query parameters")
    return vhost, name


def plain(value: Any, *, amqp: bool = False) -> Any:
    """Results as JSON-ready data. ``amqp`` tags timestamps too (header tables)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in EXTRA.get(type(value).__name__, ()):
            data[name] = plain(getattr(value, name))
        return data
    if isinstance(value, datetime):
        return {"$timestamp": value.isoformat()} if amqp else value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$bytes": base64.b64encode(bytes(value)).decode("ascii")}
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v, amqp=amqp) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v, amqp=amqp) for v in value]
    return value
