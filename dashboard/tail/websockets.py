"""Websockets of live tails: the messages flowing through one queue or topic now.

    ws/tail/queue/?cluster=<slug>&vhost=<vhost>&name=<queue>
    ws/tail/topic/?cluster=<slug>&name=<topic>

The Origin is checked by the ASGI stack (``AllowedHostsOriginValidator``);
``connect`` refuses sockets without a logged-in session (4401) or without the
viewer role (4403), for unknown clusters (4404) and with missing parameters or
a cluster whose kind has no tap for this route's entity (4400). An accepted
socket is sent a ``tail.status`` and then waits: the page sends
``{"action": "start"}`` to join the entity's tail and ``{"action": "pause"}``
to leave it (the tail stops when its last viewer leaves or disconnects). A user watches at
most ``MQB_USER_MAX_TAILS`` tails at once (per web process), and a process runs
at most ``MQB_TAIL_MAX_RUNNING``: a start beyond either is answered with a
``tail.status`` of state ``refused`` whose message says why, and the socket
stays open (pausing another tail frees a place). While joined it is sent
``tail.message`` (each with the viewer's running ``skipped`` count) and, every
quiet second or on a state change, ``tail.status`` (state: starting, running,
error, untappable).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from brokers.base import ConfigError
from brokers.registry import kind_of
from dashboard.core.clusters import get_cluster_config
from dashboard.core.limits import TAIL_WATCHERS, Busy, user_key
from dashboard.core.roles import VIEWER, has_role
from dashboard.core.websockets import UNAUTHENTICATED
from dashboard.tail.events import TailFrame, TailStatus
from dashboard.tail.hub import Viewer
from dashboard.tail.viewers import join_tail

BAD_REQUEST = 4400
FORBIDDEN = 4403
NOT_FOUND = 4404


class TailConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    # What this route tails: a cluster's kind serves it if its tap has this entity.
    entity: ClassVar[str] = ""

    params: dict[str, str]
    viewer: Viewer | None = None
    relay: asyncio.Task[None] | None = None
    release_share: Callable[[], None] | None = None

    def complete(self, params: dict[str, str]) -> bool:
        raise NotImplementedError

    async def join(self) -> Viewer:
        raise NotImplementedError

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        if not await database_sync_to_async(has_role)(user, VIEWER):
            await self.close(code=FORBIDDEN)
            return
        raw = parse_qs(
            self.scope.get("query_string", b"").decode("utf-8", "replace"), keep_blank_values=True
        )
        self.params = {k: v[0] for k, v in raw.items() if v}
        try:
            config = get_cluster_config(self.params.get("cluster", ""))
        except ConfigError:
            await self.close(code=NOT_FOUND)
            return
        tap = kind_of(config).tap
        if tap is None or tap.entity != self.entity or not self.complete(self.params):
            await self.close(code=BAD_REQUEST)
            return
        await self.accept()
        paused = TailStatus(
            state="paused",
            message="",
            notes=[],
            counting="",
            rate=settings.MQB_TAIL_RATE,
            skipped=0,
            skipped_exact=True,
            shown=0,
        )
        await self.send_json(paused.as_json())

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        if action == "start" and self.viewer is None:
            try:
                self.viewer = await self._join_within_share()
            except Busy as exc:
                refused = TailStatus(state="refused", message=exc.message)
                await self.send_json(refused.as_json())
                return
            self.relay = asyncio.create_task(self._relay(self.viewer))
        elif action == "pause":
            await self._leave()
            await self.send_json(TailStatus(state="paused", message="").as_json())

    async def _join_within_share(self) -> Viewer:
        limit = settings.MQB_USER_MAX_TAILS
        release = TAIL_WATCHERS.take(
            user_key(self.scope["user"]),
            limit,
            f"You are watching {limit} live tails already, the most one user may watch at once"
            f" (MQB_USER_MAX_TAILS={limit}). Pause one of them, then start this one.",
        )
        try:
            viewer = await self.join()
        except BaseException:
            release()
            raise
        self.release_share = release
        return viewer

    async def _relay(self, viewer: Viewer) -> None:
        await self.send_json(viewer.status().as_json())
        while True:
            event = await viewer.next_event()
            if isinstance(event, TailFrame):
                await self.send(text_data=event.text())
            else:
                await self.send_json(event.as_json())

    async def _leave(self) -> None:
        relay, self.relay = self.relay, None
        viewer, self.viewer = self.viewer, None
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        if viewer is not None:
            await viewer.leave()
        release, self.release_share = self.release_share, None
        if release is not None:
            release()

    async def disconnect(self, code: int) -> None:
        await self._leave()


class QueueTailConsumer(TailConsumer):
    entity = "queue"

    def complete(self, params: dict[str, str]) -> bool:
        return bool(params.get("vhost")) and "name" in params

    async def join(self) -> Viewer:
        p = self.params
        return await join_tail(p["cluster"], p["name"], vhost=p["vhost"])


class TopicTailConsumer(TailConsumer):
    entity = "topic"

    def complete(self, params: dict[str, str]) -> bool:
        return bool(params.get("name"))

    async def join(self) -> Viewer:
        return await join_tail(self.params["cluster"], self.params["name"])
