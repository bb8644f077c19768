"""Finding dead-letter queues and topics, with what feeds them and how deep they are.

RabbitMQ (:func:`discover_rabbitmq`): a queue is a DLQ when another queue's
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

Kafka (:func:`discover_kafka`): topics named ``*.DLT``, ``*-dlt``, ``*-dlq``,
``*.dlq`` (and ``_``), plus the configured ones; a topic whose name without the
suffix exists is given that topic as its source. Depth is the sum over
partitions of high minus low watermark (records kept, captured or not).

Limitations: at most ``scan_limit`` queues are read (the result says so);
depths come from the management plugin's statistics (up to 5 s old);
headers exchanges are listed as routing everything, with a note.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from brokers.base import DLQ_NAME_PATTERN, BrokerError
from brokers.rabbitmq_values import quote_name

from .routing import Route, RouteFinder

NAME_RE = re.compile(DLQ_NAME_PATTERN)
_SUFFIX = re.compile(r"(?i)[._-](dlq|dlt)$")
PAGE_SIZE = 500
CONCURRENCY = 6
MAX_DEPTHS = 500  # DLQs whose depth is asked for one by one; beyond that, unknown


@dataclass(frozen=True)
class DeadLetterSource:
    """A queue (or topic) whose dead letters land in a DLQ.

    ``via``: ``argument`` or ``policy`` (how its dead-letter exchange is set),
    or ``name`` (Kafka: the DLQ's name minus its suffix). ``routing_key`` is
    the dead-letter routing key, None when messages keep their own.
    """

    name: str
    via: str
    exchange: str | None = None
    routing_key: str | None = None
    note: str = ""


@dataclass(frozen=True)
class DiscoveredDLQ:
    kind: str  # "rabbitmq" or "kafka"
    name: str
    vhost: str  # "" on Kafka
    depth: int | None
    found_by: tuple[str, ...]  # "dead-letter exchange", "name", "configured"
    sources: tuple[DeadLetterSource, ...] = ()
    queue_type: str = ""  # classic, quorum, stream; "topic" on Kafka
    exists: bool = True  # False: a dead-letter exchange routes to a queue not (yet) there

    @property
    def capturable(self) -> bool:
        return self.exists and self.queue_type != "stream"


@dataclass(frozen=True)
class Discovery:
    dlqs: tuple[DiscoveredDLQ, ...]
    checked_at: datetime
    scanned: int
    complete: bool  # False: stopped at the scan limit
    notes: tuple[str, ...] = ()


class ManagementAPI(Protocol):
    async def management_get(self, path: str, params: dict[str, str] | None = None) -> Any: ...


def quote(name: str) -> str:
    return quote_name(name)


# -- RabbitMQ ----------------------------------------------------------------------


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
    path = "/api/policies" if vhost is None else f"/api/policies/{quote_name(vhost, 'vhost')}"
    data = await api.management_get(path)
    found: dict[tuple[str, str], Mapping[str, Any]] = {}
    for policy in data if isinstance(data, list) else []:
        if isinstance(policy, Mapping) and isinstance(policy.get("definition"), Mapping):
            found[(str(policy.get("vhost", "")), str(policy.get("name", "")))] = policy[
                "definition"
            ]
    return found


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
        dlx, via = _text(arguments.get("x-dead-letter-exchange")), "argument"
        if dlx is None:
            dlx, via = _text(policy.get("dead-letter-exchange")), "policy"
        if dlx is None:
            continue
        key = _text(arguments.get("x-dead-letter-routing-key"))
        if key is None:
            key = _text(policy.get("dead-letter-routing-key"))
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


# -- Kafka -------------------------------------------------------------------------


async def discover_kafka(broker: Any, *, configured: Iterable[str] = ()) -> Discovery:
    """DLQ topics by name and by configuration; ``broker`` is a connected KafkaBroker."""
    from .kafka_depth import topic_depths, topic_names

    partitions_of = await topic_names(broker)
    extra = {name for name in configured if name}
    names = sorted(
        n for n in partitions_of if not n.startswith("__") and (NAME_RE.search(n) or n in extra)
    )
    depths = await topic_depths(broker, {n: partitions_of[n] for n in names})
    dlqs = []
    for name in names:
        base = _SUFFIX.sub("", name)
        sources: tuple[DeadLetterSource, ...] = ()
        if base != name and base in partitions_of:
            sources = (DeadLetterSource(base, "name", note="the DLQ's name minus its suffix"),)
        found_by = tuple(
            label
            for label, hit in (("name", bool(NAME_RE.search(name))), ("configured", name in extra))
            if hit
        )
        dlqs.append(
            DiscoveredDLQ(
                kind="kafka",
                name=name,
                vhost="",
                depth=depths.get(name),
                found_by=found_by,
                sources=sources,
                queue_type="topic",
            )
        )
    missing = sorted(extra - set(partitions_of))
    notes = tuple(f"configured DLQ topic {n!r} does not exist" for n in missing)
    return Discovery(
        dlqs=tuple(dlqs),
        checked_at=datetime.now(UTC),
        scanned=len(partitions_of),
        complete=True,
        notes=notes,
    )
