"""Shared pieces of the Kafka JSON API: error answers, JSON bodies, serialization."""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from functools import wraps
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from dashboard.core.api import method_not_allowed
from dashboard.core.limits import Busy
from dashboard.services.kafka import Decoded, InvalidInput, RecordView

View = Callable[..., Coroutine[Any, Any, HttpResponse]]

# Properties worth returning next to a result's fields.
EXTRA = {
    "TopicSummary": ("compacted",),
    "TopicPage": ("pages",),
    "PartitionInfo": ("messages", "under_replicated"),
    "TopicDetail": ("messages", "compacted", "compact_only"),
    "TopicReaders": ("complete",),
    "GroupSummary": ("has_commits",),
    "GroupPage": ("pages",),
    "GroupDetail": ("lag", "is_active"),
    "PurgedPartition": ("deleted",),
    "PurgeResult": ("deleted",),
}


def api(methods: tuple[str, ...] = ("GET",)) -> Callable[[View], View]:
    """Allowed methods; bad input, missing role, over the user's share as JSON (400/403/429)."""

    def decorator(view: View) -> View:
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return method_not_allowed(methods)
            try:
                return await view(request, *args, **kwargs)
            except InvalidInput as exc:
                return error(exc.message, "invalid", 400)
            except PermissionDenied as exc:
                return error(str(exc) or "not allowed", "forbidden", 403)
            except Busy as exc:
                response = error(exc.message, "too_many_requests", 429)
                response["Retry-After"] = str(exc.retry_after)
                return response

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


def plain(value: Any) -> Any:
    """A result dataclass as JSON-ready data (datetimes ISO 8601, bytes base64)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        data = {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        for name in EXTRA.get(type(value).__name__, ()):
            data[name] = plain(getattr(value, name))
        return data
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def _part(raw: bytes | None, decoded: Decoded, download: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    whole = len(raw) <= settings.MQB_DISPLAY_LIMIT
    return {
        "format": decoded.format,
        "size": decoded.size,
        "text": decoded.text,
        "truncated": decoded.truncated,
        "note": decoded.note,
        "base64": base64.b64encode(raw).decode("ascii") if whole else None,
        "download": download,
    }


def record_json(slug: str, view: RecordView, downloads: str = "") -> dict[str, Any]:
    """One record as JSON; ``downloads`` (from :func:`download_base`) saves a reverse()."""
    r = view.record
    prefix = f"{downloads or download_base(slug, r.topic)}{r.partition}/{r.offset}/"
    return {
        "partition": r.partition,
        "offset": r.offset,
        "timestamp": r.timestamp.isoformat() if r.timestamp else None,
        "timestamp_type": r.timestamp_type,
        "key": _part(r.key, view.key, prefix + "key"),
        "value": _part(r.value, view.value, prefix + "value"),
        "headers": [
            {
                "key": key,
                "base64": None if raw is None else base64.b64encode(raw).decode("ascii"),
                "display": row.display,
                "type": row.type_name,
            }
            for (key, raw), row in zip(r.headers, view.headers, strict=False)
        ],
    }


def download_base(slug: str, topic: str) -> str:
    """``/clusters/<slug>/kafka/topics/<topic>/records/``: add ``<p>/<offset>/<part>``."""
    url = reverse("kafka-record-download", args=[slug, topic, 0, 0, "key"])
    return url.removesuffix("0/0/key")
