"""What the live pages' websocket consumers share; each checks the session user in ``connect``.

The consumers live in their features: ``dashboard.overview.websockets`` (cluster
health), ``dashboard.jobs.websockets`` (one job's progress),
``dashboard.metrics.websockets`` (live charts) and ``dashboard.tail.websockets``
(messages flowing through a queue or topic); ``dashboard/routing.py`` maps their
URLs. A socket without a logged-in session is closed with :data:`UNAUTHENTICATED`.

:class:`Relaying` lets a consumer forward the collector's events without channels'
database housekeeping on each one.
"""

from __future__ import annotations

from typing import Any, ClassVar

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncJsonWebsocketConsumer

UNAUTHENTICATED = 4401


class Relaying(AsyncJsonWebsocketConsumer):  # type: ignore[misc]
    """A consumer whose handlers of the channel-layer events in ``relayed`` only
    forward them to the browser, touching no database.

    channels runs ``close_old_connections`` in a sync thread before every handler
    it dispatches: a thread hop per event, all of them through one shared thread
    (a hundred live charts: a hundred hops a second, and the events queue behind
    one another there). Events in ``relayed`` go straight to their handler; every
    other message (connect, receive, disconnect) is dispatched as channels does.
    """

    relayed: ClassVar[frozenset[str]] = frozenset()

    async def dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") in self.relayed:
            await getattr(self, get_handler_name(message))(message)
            return
        await super().dispatch(message)
