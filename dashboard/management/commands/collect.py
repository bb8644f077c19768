"""The collector: one long-lived asyncio process that samples every cluster.

For now it checks each cluster's health on an interval, stores it, and pushes
it to the ``overview`` group; metrics sampling and dead-letter capture grow
here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.management.base import BaseCommand
from redis.exceptions import RedisError

from dashboard.consumers import OVERVIEW_GROUP
from dashboard.services.clusters import get_all_cluster_health

log = logging.getLogger("dashboard.collector")


class Command(BaseCommand):
    help = "Sample every configured cluster on an interval and push updates to browsers."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--interval", type=float, default=settings.MQB_SAMPLE_INTERVAL)
        parser.add_argument("--once", action="store_true", help="sample once and exit")

    def handle(self, *args: Any, interval: float, once: bool, **options: Any) -> None:
        asyncio.run(self.run(interval, once))

    async def run(self, interval: float, once: bool) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        layer = get_channel_layer()
        log.info("collector started, sampling every %g s", interval)
        while not stop.is_set():
            started = loop.time()
            for health in await get_all_cluster_health():
                payload = {"type": "cluster.health", "health": health.as_json()}
                try:
                    await layer.group_send(OVERVIEW_GROUP, payload)
                    await layer.group_send(f"cluster.{health.slug}", payload)
                except (OSError, RedisError) as exc:
                    # Redis down: the sample is stored; browsers catch up later.
                    log.warning("cannot push to the channel layer: %s", exc)
            if once:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.1, interval - (loop.time() - started)))
        log.info("collector stopped")
