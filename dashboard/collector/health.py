"""Cluster health: checked every interval, stored, and pushed to the overview."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from dashboard.core.clusters import get_all_cluster_health
from dashboard.core.stopping import until_stopped
from dashboard.overview.checks import push

log = logging.getLogger("dashboard.collector.health")


async def sample_once() -> None:
    for health in await get_all_cluster_health():
        await push(dataclasses.replace(health, source="collector"))


async def run(stop: asyncio.Event, interval: float) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await sample_once()
        await until_stopped(stop, max(0.1, interval - (loop.time() - started)))
