"""JSON API of dead-letter queues: the list across clusters, manage and let go (admin).

Writes take a JSON body ``{"cluster", "vhost", "name"}`` (``vhost`` is ignored
on Kafka), need the admin role, the session cookie and the CSRF token in the
``X-CSRFToken`` header. Broker errors become JSON through ``dashboard.core.errors``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Coroutine
from datetime import datetime
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard.core.api import method_not_allowed
from dashboard.services.deadletters import (
    ClusterDeadLetterQueues,
    DeadLetterQueueRow,
    InvalidInput,
    do_manage_dlq,
    do_release_dlq,
    get_dead_letter_queues,
)

View = Callable[..., Coroutine[Any, Any, HttpResponse]]


def api(methods: tuple[str, ...] = ("GET",)) -> Callable[[View], View]:
    def decorator(view: View) -> View:
        @wraps(view)
        async def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                return method_not_allowed(methods)
            try:
                return await view(request, *args, **kwargs)
            except InvalidInput as exc:
                return error(str(exc), "invalid", 400)
            except PermissionDenied as exc:
                return error(str(exc) or "not allowed", "forbidden", 403)

        return wrapper

    return decorator


def error(message: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message, "code": code}, status=status)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def row_json(row: DeadLetterQueueRow) -> dict[str, Any]:
    dlq = row.dlq
    return {
        "name": dlq.name,
        "vhost": dlq.vhost if dlq.kind == "rabbitmq" else None,
        "depth": dlq.depth,
        "found_by": list(dlq.found_by),
        "sources": _plain(dlq.sources),
        "type": dlq.queue_type,
        "exists": dlq.exists,
        "capturable": dlq.capturable,
        "managed": _plain(row.managed),
    }


def cluster_json(group: ClusterDeadLetterQueues) -> dict[str, Any]:
    return {
        "slug": group.slug,
        "name": group.name,
        "kind": group.kind,
        "read_only": group.read_only,
        "error": group.error or None,
        "checked_at": _plain(group.checked_at),
        "scanned": group.scanned,
        "complete": group.complete,
        "notes": list(group.notes),
        "dlqs": [row_json(r) for r in group.rows],
    }


@api()
async def queues(request: HttpRequest) -> JsonResponse:
    groups = await get_dead_letter_queues()
    return JsonResponse({"clusters": [cluster_json(g) for g in groups]})


def _target(request: HttpRequest) -> tuple[str, str, str]:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError as exc:
        raise InvalidInput(f"the body is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    cluster, vhost, name = data.get("cluster"), data.get("vhost") or "", data.get("name")
    if not isinstance(cluster, str) or not isinstance(name, str) or not name:
        raise InvalidInput("cluster and name are required")
    if not isinstance(vhost, str):
        raise InvalidInput("vhost must be a string")
    return cluster, vhost, name


@api(("POST",))
async def manage(request: HttpRequest) -> JsonResponse:
    cluster, vhost, name = _target(request)
    changed = await do_manage_dlq(cluster, vhost, name, user=await request.auser(), request=request)
    return JsonResponse({"managed": True, "changed": changed})


@api(("POST",))
async def release(request: HttpRequest) -> JsonResponse:
    cluster, vhost, name = _target(request)
    await do_release_dlq(cluster, vhost, name, user=await request.auser(), request=request)
    return JsonResponse({"managed": False, "changed": True})
