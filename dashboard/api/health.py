"""JSON twin of the overview page."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from dashboard.core.clusters import get_all_cluster_health


@require_GET
async def clusters_health(request: HttpRequest) -> JsonResponse:
    health = await get_all_cluster_health()
    return JsonResponse({"clusters": [h.as_json() for h in health]})
