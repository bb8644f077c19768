"""URLs of the live metrics pages, the consumers page and /metrics (API: dashboard.metrics.api).

``/metrics`` is Prometheus's conventional path; it takes a bearer token, not a
session. The pages live under ``/live/`` so they never collide with it.
"""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, path

from dashboard.metrics.views import charts as metrics
from dashboard.metrics.views import consumers_page as consumers

urlpatterns: list[URLPattern | URLResolver] = [
    path("metrics", metrics.prometheus_metrics, name="prometheus-metrics"),
    path("live/", metrics.metrics_home, name="metrics"),
    path("live/<slug:slug>/", metrics.cluster_metrics, name="metrics-cluster"),
    path("live/<slug:slug>/entity", metrics.entity_metrics, name="metrics-entity"),
    path("consumers/", consumers.consumers_page, name="consumers"),
]
