from __future__ import annotations

from django.urls import path

from dashboard.alerts.websockets import AlertsConsumer
from dashboard.jobs.websockets import JobConsumer
from dashboard.metrics.websockets import (
    ClusterMetricsConsumer,
    GroupMetricsConsumer,
    QueueMetricsConsumer,
    TopicMetricsConsumer,
)
from dashboard.overview.websockets import OverviewConsumer
from dashboard.tail.websockets import QueueTailConsumer, TopicTailConsumer

websocket_urlpatterns = [
    path("ws/overview/", OverviewConsumer.as_asgi()),
    path("ws/metrics/cluster/", ClusterMetricsConsumer.as_asgi()),
    path("ws/metrics/queue/", QueueMetricsConsumer.as_asgi()),
    path("ws/metrics/topic/", TopicMetricsConsumer.as_asgi()),
    path("ws/metrics/group/", GroupMetricsConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
    path("ws/tail/queue/", QueueTailConsumer.as_asgi()),
    path("ws/tail/topic/", TopicTailConsumer.as_asgi()),
    path("ws/alerts/", AlertsConsumer.as_asgi()),
]
