"""Which requeue destinations exist on RabbitMQ now: exchanges, read by the management API.

A destination is a vhost (the sender's address) and an exchange (plus a
routing key, which needs nothing to exist). The default exchange always
exists. Each distinct exchange is read once (``GET /api/exchanges/<vhost>/<name>``),
a few at a time; a 404 means it (or its vhost) is gone. Names are validated
(:func:`brokers.base.validate.amqp_exchange`, path quoting) before a request is
built. Limitation: whether a queue is bound for the routing key is not checked
(the publish itself finds that out, with mandatory routing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from brokers.base import validate
from brokers.base.deadletters import Destination
from brokers.base.errors import NotFound
from brokers.rabbitmq.models import ManagementAPI
from brokers.rabbitmq.routes import exchange_path

AT_ONCE = 8  # management API requests in flight


async def missing_exchanges(
    api: ManagementAPI, destinations: Sequence[Destination]
) -> dict[Destination, str]:
    """The destinations whose exchange does not exist now, with why."""
    places = {(d.address, d.get("exchange")) for d in destinations}
    gone: dict[tuple[str, str], str] = {}
    limit = asyncio.Semaphore(AT_ONCE)

    async def check(vhost: str, exchange: str) -> None:
        if not exchange:
            return
        try:
            validate.amqp_exchange(exchange)
            path = exchange_path(vhost, exchange)
        except (validate.InvalidValue, ValueError) as exc:
            gone[(vhost, exchange)] = f"exchange {exchange!r} cannot be named: {exc}"
            return
        async with limit:
            try:
                await api.management_get(path)
            except NotFound:
                gone[(vhost, exchange)] = f"exchange {exchange!r} does not exist in vhost {vhost!r}"

    await asyncio.gather(*(check(vhost, exchange) for vhost, exchange in sorted(places)))
    return {
        d: gone[(d.address, d.get("exchange"))]
        for d in destinations
        if (d.address, d.get("exchange")) in gone
    }
