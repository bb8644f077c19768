from __future__ import annotations

from django.urls import path

from dashboard.consumers import OverviewConsumer

websocket_urlpatterns = [
    path("ws/overview/", OverviewConsumer.as_asgi()),
]
