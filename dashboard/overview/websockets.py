"""The overview's websocket: each cluster's health as the collector checks it."""

from __future__ import annotations

from typing import Any

from dashboard.core.websockets import UNAUTHENTICATED, Relaying
from dashboard.overview.events import ClusterHealthEvent

OVERVIEW_GROUP = "overview"


class OverviewConsumer(Relaying):
    """Pushes each cluster's health as the collector checks it."""

    relayed = frozenset({"cluster.health"})

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        await self.channel_layer.group_add(OVERVIEW_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(OVERVIEW_GROUP, self.channel_name)

    async def cluster_health(self, event: dict[str, Any]) -> None:
        await self.send_json(ClusterHealthEvent.of(event).as_json())
