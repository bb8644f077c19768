"""The collector: one long-lived asyncio process that watches every cluster.

It runs the loops listed in ``dashboard.collector.LOOPS`` side by side
(health checks, and what later issues add: metrics sampling, dead-letter
capture), restarts a loop that crashes, and stops all of them on SIGINT or
SIGTERM. Any number of collectors may run: only the one holding the leader
lease (``dashboard.collector.lease``) runs the loops; the others stand by and
take over when it dies, and a leader that loses the lease stops its loops.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from importlib import import_module
from typing import Any, cast

from django.conf import settings
from django.core.management.base import BaseCommand

from brokers.base import BrokerError, ConfigError
from dashboard.collector import LOOPS, Loop
from dashboard.collector.lease import lead
from dashboard.core.clusters import get_cluster_configs
from dashboard.core.connections import get_broker
from dashboard.core.stopping import until_stopped

log = logging.getLogger("dashboard.collector")
RESTART_PAUSE = 5.0


def _load(dotted: str) -> Loop:
    module, _, name = dotted.rpartition(".")
    return cast(Loop, getattr(import_module(module), name))


class Command(BaseCommand):
    help = "Watch every configured cluster and push updates to browsers."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--interval", type=float, default=settings.MQB_SAMPLE_INTERVAL)
        parser.add_argument("--once", action="store_true", help="check health once and exit")
        parser.add_argument(
            "--only", action="append", choices=sorted(LOOPS), help="run only these loops"
        )

    def handle(
        self, *args: Any, interval: float, once: bool, only: list[str] | None, **options: Any
    ) -> None:
        if once:
            from dashboard.collector.health import sample_once

            asyncio.run(sample_once())
            return
        asyncio.run(self.run(interval, only or sorted(LOOPS)))

    async def run(self, interval: float, names: list[str]) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("collector started (%s), interval %g s", ", ".join(names), interval)
        for name in names:  # imported now (and brokers connected: warm_up), so that a
            _load(LOOPS[name])  # standby taking over samples at once

        # Metrics first: on a takeover its first database calls queue ahead of the others'.
        names = sorted(names, key=lambda name: name != "metrics")

        async def work(term: asyncio.Event) -> None:
            await asyncio.gather(*(self.supervise(name, term, interval) for name in names))

        warming = asyncio.create_task(self.warm_up(), name="warm-up")
        try:
            await lead(work, stop, interval)
        finally:
            warming.cancel()
        log.info("collector stopped")

    async def warm_up(self) -> None:
        """What a term would do first, done while standing by: the brokers' packages
        imported and each cluster's adapter connected (this event loop's cache, which the
        loops use and a leader keeps after its term). A broker that cannot be reached now
        is connected by the first loop that needs it, as without this."""
        try:
            configs = get_cluster_configs()
        except ConfigError as exc:
            log.debug("no warm-up: %s", exc)
            return
        for config in configs:
            try:
                await get_broker(config.slug)
            except (BrokerError, ConfigError, OSError, TimeoutError) as exc:
                log.debug("%s: not connected ahead of a term: %s", config.slug, exc)

    async def supervise(self, name: str, stop: asyncio.Event, interval: float) -> None:
        run = _load(LOOPS[name])
        while not stop.is_set():
            try:
                await run(stop, interval)
            except Exception:
                log.exception("collector loop %s crashed; restarting in %g s", name, RESTART_PAUSE)
                await until_stopped(stop, RESTART_PAUSE)
