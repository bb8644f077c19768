"""The overview page: one card per cluster, checked live, then kept fresh over a websocket."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.core.clusters import get_all_cluster_health


async def overview(request: HttpRequest) -> HttpResponse:
    health = await get_all_cluster_health()
    return await sync_to_async(render)(request, "dashboard/overview.html", {"clusters": health})
