from __future__ import annotations

from django.urls import path

from dashboard.websockets.jobs import JobConsumer
from dashboard.websockets.metrics import (
    ClusterMetricsConsumer,
    GroupMetricsConsumer,
    QueueMetricsConsumer,
    TopicMetricsConsumer,
)
from dashboard.websockets.overview import OverviewConsumer
from dashboard.websockets.tail import QueueTailConsumer, TopicTailConsumer

websocket_urlpatterns = [
    path("ws/overview/", OverviewConsumer.as_asgi()),
    path("ws/metrics/cluster/", ClusterMetricsConsumer.as_asgi()),
    path("ws/metrics/queue/", QueueMetricsConsumer.as_asgi()),
    path("ws/metrics/topic/", TopicMetricsConsumer.as_asgi()),
    path("ws/metrics/group/", GroupMetricsConsumer.as_asgi()),
    path("ws/jobs/<int:job_id>/", JobConsumer.as_asgi()),
    path("ws/tail/queue/", QueueTailConsumer.as_asgi()),
    path("ws/tail/topic/", TopicTailConsumer.as_asgi()),
]
