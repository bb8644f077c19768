"""The collector's loops. ``manage.py collect`` runs every one of them side by side.

Each loop is an ``async def run(stop: asyncio.Event, interval: float) -> None``
that returns soon after ``stop`` is set, and never lets one cluster's failure
stop the others. A loop that crashes is logged and restarted after a pause,
so one bug cannot silence the rest of the collector.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

Loop = Callable[[asyncio.Event, float], Awaitable[None]]

# Dotted paths, imported by the command: a loop module may import models.
LOOPS: dict[str, str] = {
    "health": "dashboard.collector.health.run",
    "capture": "dashboard.collector.capture.run",
    "metrics": "dashboard.collector.metrics.run",
    "celery": "dashboard.collector.consumers_tracking.run_celery",
    "retention": "dashboard.collector.retention.run",
}
