"""JSON API of dead-letter queues: the list across clusters, manage and let go (admin).

Writes take a JSON body ``{"cluster", "vhost", "name"}`` (``vhost`` is ignored
on Kafka), need the admin role, the session cookie and the CSRF token in the
``X-CSRFToken`` header. Broker errors become JSON through ``dashboard.core.errors``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from django.http import HttpRequest, JsonResponse

from dashboard.core.api import api, json_body
from dashboard.core.params import InvalidInput
from dashboard.deadletters import (
    ClusterDeadLetterQueues,
    DeadLetterQueueRow,
    do_manage_dlq,
    do_release_dlq,
    get_dead_letter_queues,
)


def plain(value: Any) -> Any:
    """Result dataclasses as JSON-ready data (datetimes ISO 8601)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def row_json(row: DeadLetterQueueRow) -> dict[str, Any]:
    dlq = row.dlq
    return {
        "name": dlq.name,
        "vhost": dlq.vhost if dlq.kind == "rabbitmq" else None,
        "depth": dlq.depth,
        "found_by": list(dlq.found_by),
        "sources": plain(dlq.sources),
        "type": dlq.queue_type,
        "exists": dlq.exists,
        "capturable": dlq.capturable,
        "managed": plain(row.managed),
    }


def cluster_json(group: ClusterDeadLetterQueues) -> dict[str, Any]:
    return {
        "slug": group.slug,
        "name": group.name,
        "kind": group.kind,
        "read_only": group.read_only,
        "error": group.error or None,
        "checked_at": plain(group.checked_at),
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
    data = json_body(request)
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
