"""Long-lived broker connections, one set per process and event loop.

Web (Daphne) and the collector each run one event loop for their whole life:
they reuse one adapter per cluster (one AMQP connection, one Kafka
AdminClient), created on first use. aio-pika connections belong to the loop
that opened them, so the cache is keyed by loop; a Celery task that runs its
own short loop gets a fresh adapter, dropped with its loop.

Sync code in a web request (a sync view or middleware, run in a thread) that
reaches a broker through ``async_to_sync`` runs on the server's loop, so it
shares that loop's adapter rather than opening connections of its own. Each
adapter keeps one AMQP connection, a bounded keep-alive pool to the management
API and one Kafka AdminClient: the connections of a web process do not grow
with the number of viewers.
"""

from __future__ import annotations

import asyncio
import weakref

from brokers.base import Broker
from brokers.registry import make_broker
from dashboard.core.clusters import get_cluster_config

_brokers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Broker]] = (
    weakref.WeakKeyDictionary()
)
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


async def get_broker(slug: str) -> Broker:
    """The connected adapter for cluster ``slug``; raises ConfigError or a BrokerError."""
    loop = asyncio.get_running_loop()
    cache = _brokers.setdefault(loop, {})
    broker = cache.get(slug)
    if broker is not None:
        return broker
    lock = _locks.setdefault(loop, asyncio.Lock())
    async with lock:
        broker = cache.get(slug)
        if broker is None:
            broker = make_broker(get_cluster_config(slug))
            await broker.connect()
            cache[slug] = broker
    return broker


async def drop_broker(slug: str) -> None:
    """Forget (and close) a cached adapter, e.g. after its cluster's config changed."""
    loop = asyncio.get_running_loop()
    broker = _brokers.get(loop, {}).pop(slug, None)
    if broker is not None:
        await broker.close()


async def close_all() -> None:
    loop = asyncio.get_running_loop()
    for broker in _brokers.pop(loop, {}).values():
        await broker.close()
