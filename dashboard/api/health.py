"""JSON twin of the overview page."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from dashboard.core.api import api
from dashboard.core.clusters import get_all_cluster_health


@api()
async def clusters_health(request: HttpRequest) -> JsonResponse:
    health = await get_all_cluster_health()
    return JsonResponse({"clusters": [h.as_json() for h in health]})
