"""Shared pieces of the RabbitMQ JSON API: error answers, JSON bodies, serialization.

AMQP values JSON cannot carry are tagged, the same way the publish endpoint
reads them: ``{"$bytes": base64}``, ``{"$decimal": "1.50"}`` and, inside
headers, ``{"$timestamp": ISO 8601}``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from decimal import Decimal
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard.core.api import method_not_allowed
from dashboard.services.rabbitmq import ConfirmationRequired, InvalidInput

View = Callable[..., Coroutine[Any, Any, HttpResponse]]

# Properties returned next to a result's fields.
EXTRA = {
    "QueuePage": ("page_count", "has_next"),
    "QueueDetail": ("head_message_age",),
    "ExchangePage": ("page_count",),
    "ExchangeDetail": ("is_default",),
}


def api(methods: tuple[str, ...] = ("GET",)) -> Callable[[View], View]:
    """Allowed methods; bad input, missing confirmation and missing role as JSON."""

    def decorator(view: View) -> View:
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return method_not_allowed(methods)
            try:
                return await view(request, *args, **kwargs)
            except InvalidInput as exc:
                return error(str(exc), "invalid", 400)
            except ConfirmationRequired as exc:
                return error(str(exc), "confirmation_required", 409)
            except PermissionDenied as exc:
                return error(str(exc) or "not allowed", "forbidden", 403)

        return wrapper

    return decorator


def error(message: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message, "code": code}, status=status)


def json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    return data


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
