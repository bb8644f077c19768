"""The alerts websocket (``ws/alerts/``): how many alerts fire, live.

Every logged-in user may read (viewers too); the session is checked in ``connect``
and the Origin by the ASGI stack, as for the other sockets. On connect it sends
:class:`~dashboard.alerts.live.AlertsCounts`: the pending and firing alerts no silence
matches, and the same for each subject the page names in its query string
(``?cluster=<slug>&subject=entity:<entity>&subject=dlq:<name>``, at most
``live.MAX_SUBJECTS``; see ``live.subject``). Then every
:class:`~dashboard.alerts.live.AlertsChanged` the engine and the alerts service publish
is relayed as it is. A page that got a message with ``complete`` false sends
``{"type": "counts"}`` and gets its counts again (answered at most once a second).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from dashboard.alerts.engine import silence_matcher
from dashboard.alerts.live import ALERTS_GROUP, MAX_SUBJECTS, AlertsChanged, counts_message
from dashboard.core.websockets import UNAUTHENTICATED

MAX_PART = 1100
"""longest cluster slug or subject read from the query string"""
ASK_EVERY = 1.0
"""seconds between two counts a socket may ask for"""


def _subjects(query_string: bytes) -> list[tuple[str, str]]:
    query = parse_qs(query_string.decode("latin-1"), max_num_fields=MAX_SUBJECTS + 1)
    cluster = (query.get("cluster") or [""])[0][:MAX_PART]
    if not cluster:
        return []
    names = dict.fromkeys(s for s in query.get("subject", ()) if s and len(s) <= MAX_PART)
    return [(cluster, name) for name in list(names)[:MAX_SUBJECTS]]


def _counts(subjects: list[tuple[str, str]]) -> dict[str, Any]:
    return counts_message(silence_matcher(), subjects).as_json()


class AlertsConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """Sends the alert counts on connect and on request, and relays every change."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=UNAUTHENTICATED)
            return
        try:
            self.subjects = _subjects(self.scope.get("query_string", b""))
        except ValueError:  # more fields than allowed
            self.subjects = []
        self.asked_at = -ASK_EVERY  # the first ask is answered at once
        await self.channel_layer.group_add(ALERTS_GROUP, self.channel_name)
        await self.accept()
        await self.send_json(await database_sync_to_async(_counts)(self.subjects))

    async def disconnect(self, code: int) -> None:
        await self.channel_layer.group_discard(ALERTS_GROUP, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict) or content.get("type") != "counts":
            return
        now = time.monotonic()
        if now - self.asked_at < ASK_EVERY:
            return
        self.asked_at = now
        await self.send_json(await database_sync_to_async(_counts)(self.subjects))

    async def alerts_changed(self, event: dict[str, Any]) -> None:
        await self.send_json(AlertsChanged.of(event).as_json())
