"""Retention of discarded dead letters, run by the collector.

Every ``MQB_DLQ_RETENTION_INTERVAL`` seconds (and once at start) it deletes the
discarded dead letters past ``MQB_DLQ_RETENTION_DAYS``
(``deadletters.retention``). The sample interval the collector passes
is ignored: retention has no reason to run every few seconds. The deletes run
in a worker thread in small transactions, so the capture loops sharing the
database and the event loop keep going.
"""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from django.conf import settings

from dashboard.core.stopping import until_stopped
from dashboard.deadletters.retention import do_delete_expired_dead_letters

log = logging.getLogger("dashboard.collector.retention")


async def run_once() -> int:
    try:
        return int(await sync_to_async(do_delete_expired_dead_letters)())
    except Exception:  # a database hiccup: try again next time
        log.exception("cannot delete expired dead letters")
        return 0


async def run(stop: asyncio.Event, interval: float) -> None:
    while not stop.is_set():
        await run_once()
        await until_stopped(stop, max(1.0, settings.MQB_DLQ_RETENTION_INTERVAL))
