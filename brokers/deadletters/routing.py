"""Where a RabbitMQ dead-letter exchange sends dead letters: its bindings, followed.

The exchange's type and its bindings as source are read once per exchange
(several at a time) and cached for one discovery. Direct, fanout and topic
bindings are evaluated here as RabbitMQ would; headers and plugin exchanges
route "depending on each message" and are kept with a note, as are routes
that depend on a message's own routing key (no dead-letter routing key).
Exchange-to-exchange bindings are followed up to :data:`MAX_HOPS` hops.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from brokers.base import NotFound
from brokers.rabbitmq_values import quote_name
from brokers.validate import InvalidValue

MAX_HOPS = 3
CONCURRENCY = 8

Wanted = tuple[str, str, str | None]  # vhost, exchange, dead-letter routing key (None: own)


class ManagementAPI(Protocol):
    async def management_get(self, path: str, params: dict[str, str] | None = None) -> Any: ...


@dataclass(frozen=True)
class Route:
    queue: str
    note: str = ""


@dataclass(frozen=True)
class _Exchange:
    type: str | None  # None: it does not exist
    bindings: tuple[tuple[str, str, str], ...]  # (destination, destination_type, routing_key)


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""
    words = key.split(".")
    reach = [True] + [False] * len(words)  # reach[j]: the pattern so far eats j words
    for part in pattern.split("."):
        if part == "#":
            for j in range(1, len(words) + 1):
                reach[j] = reach[j] or reach[j - 1]
        else:
            reach = [False] + [
                reach[j] and (part == "*" or part == words[j]) for j in range(len(words))
            ]
    return reach[-1]


def _path(vhost: str, exchange: str) -> str:
    return f"/api/exchanges/{quote_name(vhost, 'vhost')}/{quote_name(exchange, 'exchange')}"


class RouteFinder:
    def __init__(self, api: ManagementAPI) -> None:
        self.api = api
        self.notes: list[str] = []
        self._cache: dict[tuple[str, str], asyncio.Future[_Exchange]] = {}
        self._limiter = asyncio.Semaphore(CONCURRENCY)

    async def routes(self, wanted: Iterable[Wanted]) -> dict[Wanted, list[Route]]:
        wanted = list(wanted)
        await asyncio.gather(*(self._exchange(v, x) for v, x, _ in wanted if x))
        return {w: await self._follow(*w, hops=0) for w in wanted}

    async def _exchange(self, vhost: str, name: str) -> _Exchange:
        key = (vhost, name)
        if key not in self._cache:
            self._cache[key] = asyncio.ensure_future(self._load(vhost, name))
        return await self._cache[key]

    async def _load(self, vhost: str, name: str) -> _Exchange:
        async with self._limiter:
            try:
                info, bindings = await asyncio.gather(
                    self.api.management_get(_path(vhost, name), {"columns": "type"}),
                    self.api.management_get(f"{_path(vhost, name)}/bindings/source"),
                )
            except (NotFound, InvalidValue):  # InvalidValue: a name the API cannot address
                return _Exchange(None, ())
        kind = info.get("type") if isinstance(info, Mapping) else None
        rows = []
        for b in bindings if isinstance(bindings, list) else []:
            if isinstance(b, Mapping):
                rows.append(
                    (
                        str(b.get("destination", "")),
                        str(b.get("destination_type", "")),
                        str(b.get("routing_key", "")),
                    )
                )
        return _Exchange(str(kind) if kind else "direct", tuple(rows))

    async def _follow(self, vhost: str, exchange: str, key: str | None, hops: int) -> list[Route]:
        if exchange == "":
            if key is None:
                return []  # back to the queue named by each message's own key: unknowable
            return [Route(key)]
        found = await self._exchange(vhost, exchange)
        if found.type is None:
            self.notes.append(
                f"dead-letter exchange {exchange!r} in vhost {vhost!r} does not exist:"
                " dead letters sent to it are dropped"
            )
            return []
        routes: dict[str, Route] = {}
        for destination, kind, binding_key in found.bindings:
            taken, note = _matches(found.type, binding_key, key)
            if not taken:
                continue
            if kind == "queue":
                routes.setdefault(destination, Route(destination, note))
            elif kind == "exchange" and hops + 1 < MAX_HOPS:
                for route in await self._follow(vhost, destination, key, hops + 1):
                    routes.setdefault(route.queue, Route(route.queue, route.note or note))
        return list(routes.values())


def _matches(kind: str, binding_key: str, key: str | None) -> tuple[bool, str]:
    if kind == "fanout":
        return True, ""
    if kind in ("direct", "topic"):
        if key is None:
            return True, f"only dead letters whose own routing key matches {binding_key!r}"
        if kind == "direct":
            return binding_key == key, ""
        return topic_matches(binding_key, key), ""
    return True, f"{kind} exchange: depends on each message"
