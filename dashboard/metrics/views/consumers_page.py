"""The consumers page: everything that consumes, across both brokers and Celery."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.core.clusters import get_cluster_configs
from dashboard.metrics.consumers import STATES, get_consumers_page
from dashboard.models import Consumer

LIMIT = 500


def consumers_page(request: HttpRequest) -> HttpResponse:
    page = get_consumers_page(
        kind=request.GET.get("kind", ""),
        cluster=request.GET.get("cluster", ""),
        state=request.GET.get("state", "active"),
        search=request.GET.get("q", "").strip(),
        limit=LIMIT,
    )
    context = {
        "page": page,
        "kinds": Consumer.Kind.choices,
        "states": STATES,
        "clusters": get_cluster_configs(),
    }
    return render(request, "consumers/consumers.html", context)
