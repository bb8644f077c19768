"""A job's websocket (``ws/jobs/<id>/``): its state on connect, then every progress report."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from dashboard.core.websockets import UNAUTHENTICATED
from dashboard.jobs.control import JobNotFound, get_job, group_name
from dashboard.jobs.events import JobProgress

NO_SUCH_JOB = 4404


class JobConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Streams one job's progress (``ws/jobs/<id>/``): its state on connect, then every report."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        try:
            job = await database_sync_to_async(get_job)(job_id)
        except JobNotFound:
            await self.close(code=NO_SUCH_JOB)
            return
        self.group = group_name(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        snapshot = await database_sync_to_async(JobProgress.of_job)(job)
        await self.send_json(snapshot.as_json())

    async def disconnect(self, code: int) -> None:
        group = getattr(self, "group", None)
        if group is not None:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def job_progress(self, event: dict[str, Any]) -> None:
        await self.send_json(JobProgress.of(event).as_json())
