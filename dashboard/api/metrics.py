"""JSON API of live metrics: a chart's history, and the consumers list.

Both read the database (and the collector's snapshot in Redis), never a broker.
"""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from dashboard.core.api import api, error
from dashboard.metrics.consumers import KINDS, STATES, get_consumers_page
from dashboard.metrics.fields import ENTITY_TYPES, entity_of
from dashboard.metrics.history import UnknownCluster, get_history
from dashboard.metrics.tiers import RANGES


@api()
def history(request: HttpRequest, cluster: str) -> JsonResponse:
    entity_type = request.GET.get("type", "cluster")
    range_name = request.GET.get("range", "1h")
    if entity_type not in ENTITY_TYPES:
        return error(f"type must be one of {', '.join(ENTITY_TYPES)}", "invalid", 400)
    if range_name not in RANGES:
        return error(f"range must be one of {', '.join(RANGES)}", "invalid", 400)
    name = request.GET.get("name", "")
    vhost = request.GET.get("vhost")
    if entity_type == "cluster":
        entity = cluster
    elif not name or (entity_type == "queue" and not vhost):
        needed = "vhost and name" if entity_type == "queue" else "name"
        return error(f"a {entity_type} needs its {needed}", "invalid", 400)
    else:
        entity = entity_of(entity_type, name, vhost)
    try:
        found = get_history(cluster, entity_type, entity, range_name)
    except UnknownCluster:
        return error(f"no cluster named {cluster!r}", "not_found", 404)
    return JsonResponse(found.as_json())


@api()
def consumers(request: HttpRequest) -> JsonResponse:
    try:
        limit = max(1, min(5000, int(request.GET.get("limit") or "500")))  # empty: 500
    except ValueError:
        return error("limit must be a number", "invalid", 400)
    # An unknown kind or state is refused: ignoring it would list everything instead.
    kind, state = request.GET.get("kind", ""), request.GET.get("state", "active")
    if kind not in ("", *KINDS):
        return error(f"kind must be empty or one of {', '.join(KINDS)}", "invalid", 400)
    if state not in STATES:
        return error(f"state must be one of {', '.join(STATES)}", "invalid", 400)
    page = get_consumers_page(
        kind=kind,
        cluster=request.GET.get("cluster", ""),
        state=state,
        search=request.GET.get("q", ""),
        limit=limit,
    )
    return JsonResponse(page.as_json())
