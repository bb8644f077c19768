"""Finding RabbitMQ dead-letter queues, with what feeds them and how deep they are.

:func:`discover_rabbitmq`: a queue is a DLQ when another queue's
dead-letter exchange routes to it, or when its name says so (``dlq``,
``*.dlq``, ``*-dlq``, ``*_dlq``, ``*.DLT``...). The queue list is read in
pages of 500 with only the columns needed (``name,vhost,type,arguments,
policy``) and without statistics, several pages at a time; with
``disable_stats`` the list still names each queue's live policy, whose
definition comes from ``/api/policies``. A queue argument wins over its policy,
key by key, as in RabbitMQ. Each dead-letter exchange's bindings
(``/api/exchanges/{vhost}/{x}/bindings/source``) are followed to the queues
they route to, honouring ``x-dead-letter-routing-key`` (without one a dead
letter keeps its own routing key, which only the message knows: such routes
are kept with a note), through exchange-to-exchange bindings up to three hops.
Only the DLQs found are then asked for their depth, one request each (the
list's queue totals would double the cost of every page). 10,000 queues are
21 requests of the list; on an idle broker about a second.

Routes (:class:`RouteFinder`): where a dead-letter exchange sends dead letters,
its bindings followed. The exchange's type and its bindings as source are read
once per exchange (several at a time) and cached for one discovery. Policies,
a queue's dead-letter settings and each binding are read and evaluated by
:mod:`brokers.rabbitmq.routes` (direct, fanout and topic bindings as RabbitMQ
would); headers and
plugin exchanges route "depending on each message" and are kept with a note, as
are routes that depend on a message's own routing key (no dead-letter routing
key). Exchange-to-exchange bindings are followed up to :data:`MAX_HOPS` hops.

Limitations: at most ``scan_limit`` queues are read (the result says so);
depths come from the management plugin's statistics (up to 5 s old);
headers exchanges are listed as routing everything, with a note.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from brokers.base import BrokerError, NotFound
from brokers.base.deadletters import NAME_RE, DeadLetterSource, DiscoveredDLQ, Discovery
from brokers.base.validate import InvalidValue
from brokers.rabbitmq.models import Binding, ManagementAPI
from brokers.rabbitmq.routes import (
    binding_takes,
    effective_dlx,
    exchange_path,
    load_policies,
    parse_binding,
)
from brokers.rabbitmq.values import quote_name

PAGE_SIZE = 500
CONCURRENCY = 6
ROUTE_CONCURRENCY = 8
MAX_HOPS = 3
MAX_DEPTHS = 500  # DLQs whose depth is asked for one by one; beyond that, unknown


def quote(name: str) -> str:
    return quote_name(name)


async def _queue_pages(
    api: ManagementAPI, vhost: str | None, scan_limit: int
) -> tuple[list[Mapping[str, Any]], bool]:
    path = "/api/queues" if vhost is None else f"/api/queues/{quote_name(vhost, 'vhost')}"
    # No enable_queue_totals: it doubles the cost of every page, and only the
    # few DLQs found need a depth (asked for afterwards).
    params = {
        "columns": "name,vhost,type,arguments,policy",
        "disable_stats": "true",
        "page_size": str(PAGE_SIZE),
        "sort": "name",
    }
    limiter = asyncio.Semaphore(CONCURRENCY)

    async def page(number: int) -> Mapping[str, Any]:
        async with limiter:
            try:
                data = await api.management_get(path, {**params, "page": str(number)})
            except BrokerError as exc:
                if "HTTP 400" in exc.message and number > 1:
                    return {}  # queues deleted while reading: this page is past the end
                raise
        return data if isinstance(data, Mapping) else {}

    first = await page(1)
    count = first.get("page_count")
    pages = count if isinstance(count, int) and count > 0 else 1
    wanted = min(pages, max(1, -(-scan_limit // PAGE_SIZE)))
    rest = await asyncio.gather(*(page(n) for n in range(2, wanted + 1)))
    rows = [
        item
        for data in (first, *rest)
        for item in (data.get("items") or [])
        if isinstance(item, Mapping)
    ]
    return rows, wanted >= pages


Definitions = dict[tuple[str, str], Mapping[str, Any]]


async def _policies(api: ManagementAPI, vhost: str | None) -> Definitions:
    """Each policy's definition by (vhost, name): the queue list names a queue's live policy."""
    return {(p.vhost, p.name): p.definition for p in await load_policies(api, vhost)}


async def _depths(api: ManagementAPI, places: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Messages in each queue (ready + unacked), asked queue by queue, several at a time."""
    limiter = asyncio.Semaphore(CONCURRENCY)

    async def one(place: tuple[str, str]) -> int | None:
        async with limiter:
            try:
                data = await api.management_get(
                    f"/api/queues/{quote(place[0])}/{quote(place[1])}", {"columns": "messages"}
                )
            except BrokerError:
                return None  # deleted meanwhile, or the broker hiccuped: unknown, not 0
        value = data.get("messages") if isinstance(data, Mapping) else None
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    answers = await asyncio.gather(*(one(p) for p in places))
    return {p: a for p, a in zip(places, answers, strict=True) if a is not None}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None


async def discover_rabbitmq(
    api: ManagementAPI, *, vhost: str | None = None, scan_limit: int = 50_000
) -> Discovery:
    """Every DLQ of the cluster (or of one ``vhost``), by dead-letter exchange and by name."""
    (rows, complete), policies = await asyncio.gather(
        _queue_pages(api, vhost, scan_limit), _policies(api, vhost)
    )
    by_key = {(str(r.get("vhost", "")), str(r.get("name", ""))): r for r in rows}
    finder = RouteFinder(api)
    wanted: list[tuple[str, str, str, str | None, str]] = []
    for (queue_vhost, name), row in by_key.items():
        arguments = row.get("arguments")
        arguments = arguments if isinstance(arguments, Mapping) else {}
        policy = policies.get((queue_vhost, _text(row.get("policy")) or ""), {})
        dlx, key, via = effective_dlx(queue_vhost, name, arguments, policy, None)
        if dlx is None or via is None:
            continue
        wanted.append((queue_vhost, name, dlx, key, via))
    routes = await finder.routes({(v, dlx, key) for v, _, dlx, key, _ in wanted})

    sources: dict[tuple[str, str], list[DeadLetterSource]] = {}
    notes: list[str] = list(finder.notes)
    for queue_vhost, name, dlx, key, via in wanted:
        found: list[Route] = routes.get((queue_vhost, dlx, key), [])
        if not found:
            notes.append(
                f"queue {name!r} in vhost {queue_vhost!r} dead-letters to exchange {dlx!r},"
                " which routes nowhere: its dead letters are dropped"
            )
        for route in found:
            sources.setdefault((queue_vhost, route.queue), []).append(
                DeadLetterSource(name, via, dlx, key, route.note)
            )
    places = sorted(set(sources) | {k for k in by_key if NAME_RE.search(k[1])})
    depths = await _depths(api, [p for p in places if p in by_key][:MAX_DEPTHS])
    if len(places) > MAX_DEPTHS:
        notes.append(f"depths of only the first {MAX_DEPTHS} dead-letter queues were asked for")
    dlqs = []
    for place in places:
        row = by_key.get(place)
        labels = (
            ("dead-letter exchange", place in sources),
            ("name", bool(NAME_RE.search(place[1]))),
        )
        found_by = tuple(label for label, hit in labels if hit)
        depth = depths.get(place)
        dlqs.append(
            DiscoveredDLQ(
                kind="rabbitmq",
                vhost=place[0],
                name=place[1],
                depth=depth,
                found_by=found_by,
                sources=tuple(sources.get(place, ())),
                queue_type=str(row.get("type") or "classic") if row is not None else "",
                exists=row is not None or not complete,
            )
        )
    return Discovery(
        dlqs=tuple(dlqs),
        checked_at=datetime.now(UTC),
        scanned=len(rows),
        complete=complete,
        notes=tuple(notes),
    )


# -- routes of dead-letter exchanges ---------------------------------------------

Wanted = tuple[str, str, str | None]  # vhost, exchange, dead-letter routing key (None: own)


@dataclass(frozen=True)
class Route:
    queue: str
    note: str = ""


@dataclass(frozen=True)
class _Exchange:
    type: str | None  # None: it does not exist
    bindings: tuple[Binding, ...]


class RouteFinder:
    def __init__(self, api: ManagementAPI) -> None:
        self.api = api
        self.notes: list[str] = []
        self._cache: dict[tuple[str, str], asyncio.Future[_Exchange]] = {}
        self._limiter = asyncio.Semaphore(ROUTE_CONCURRENCY)

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
                path = exchange_path(vhost, name)
                info, bindings = await asyncio.gather(
                    self.api.management_get(path, {"columns": "type"}),
                    self.api.management_get(f"{path}/bindings/source"),
                )
            except (NotFound, InvalidValue):  # InvalidValue: a name the API cannot address
                return _Exchange(None, ())
        kind = info.get("type") if isinstance(info, Mapping) else None
        rows = [parse_binding(b) for b in bindings if isinstance(b, Mapping)]
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
        for binding in found.bindings:
            taken, note = binding_takes(found.type, binding.routing_key, key)
            if not taken:
                continue
            destination = binding.destination
            if binding.destination_type == "queue":
                routes.setdefault(destination, Route(destination, note))
            elif binding.destination_type == "exchange" and hops + 1 < MAX_HOPS:
                for route in await self._follow(vhost, destination, key, hops + 1):
                    routes.setdefault(route.queue, Route(route.queue, route.note or note))
        return list(routes.values())
