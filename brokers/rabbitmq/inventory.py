"""RabbitMQ queues through the management API: one page of the list, one queue in detail.

Features: the queue list is always one paginated request (``page``,
``page_size``, ``sort``, ``sort_reverse``, ``name`` with ``use_regex`` and
``columns``), with ``disable_stats=true&enable_queue_totals=true`` unless
consumers, policies or rates are shown or sorted by: statistics roughly double
the cost of a page at 10,000 queues. A page past the end (HTTP 400 in 3.10)
becomes an empty page that knows how many queues matched.

Limitations: the management API filters only by vhost (the path) and name.
Type, state and "has a dead-letter exchange" are applied here while reading
the list in the chosen order, 500 queues per request, up to
``QueueQuery.scan_limit`` queues; the result says how far the scan got
(:class:`ScanInfo`). Without statistics a queue's policy is not in the list, so
a dead-letter exchange set by policy is worked out from the vhost's policies
(highest priority matching policy, Python's ``re.search`` standing in for
Erlang's regex). "Receives dead letters from" needs the same kind of scan and
is bounded the same way.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from brokers.base import NotFound
from brokers.rabbitmq.models import (
    MAX_PAGE_SIZE,
    QUEUE_SORTS,
    ManagementAPI,
    QueueDetail,
    QueuePage,
    QueueQuery,
    QueueRow,
    ScanInfo,
)
from brokers.rabbitmq.routes import (
    Policy,
    consumers_of,
    dead_letter_sources,
    dead_letter_targets,
    effective_dlx,
    load_policies,
    parse_binding,
)
from brokers.rabbitmq.values import as_bool, as_float, as_int, as_mapping, as_text, quote_name

# Without statistics RabbitMQ still sends the policy name (it costs nothing extra).
BASE_COLUMNS = (
    "name,vhost,type,state,messages,messages_ready,messages_unacknowledged,"
    "arguments,durable,auto_delete,exclusive,policy"
)
STATS_COLUMNS = (
    ",consumers,effective_policy_definition,"
    "message_stats.publish_details.rate,message_stats.deliver_get_details.rate"
)
_PAST_END_LEN = re.compile(r"len:\s*(\d+)")


def queues_path(vhost: str | None) -> str:
    return "/api/queues" if vhost is None else f"/api/queues/{quote_name(vhost, 'vhost')}"


def page_params(query: QueueQuery, page: int, page_size: int) -> dict[str, str]:
    """The management API parameters of one page of ``query``."""
    params = {
        "page": str(page),
        "page_size": str(page_size),
        "sort": QUEUE_SORTS.get(query.sort, "name"),
        "sort_reverse": "true" if query.reverse else "false",
        "columns": BASE_COLUMNS + (STATS_COLUMNS if query.needs_stats else ""),
    }
    if query.name:
        params["name"] = query.name
        if query.regex:
            params["use_regex"] = "true"
    if not query.needs_stats:
        params["disable_stats"] = "true"
        params["enable_queue_totals"] = "true"
    return params


async def queue_page(api: ManagementAPI, query: QueueQuery) -> QueuePage:
    if query.local_filters:
        return await _scanned_page(api, query)
    data, past_end = await _get_page(api, query, query.page, query.page_size)
    now = datetime.now(UTC)
    if data is None:
        return QueuePage((), query, total=None, filtered=past_end, fetched_at=now, past_end=True)
    policies = None
    if not query.needs_stats and any(raw.get("policy") for raw in _items(data)):
        # Without statistics there is no effective definition: read the named policies.
        policies = await load_policies(api, query.vhost)
    return QueuePage(
        items=tuple(queue_row(raw, query.needs_stats, policies) for raw in _items(data)),
        query=query,
        total=as_int(data.get("total_count")),
        filtered=as_int(data.get("filtered_count")),
        fetched_at=now,
    )


async def _get_page(
    api: ManagementAPI, query: QueueQuery, page: int, page_size: int
) -> tuple[dict[str, Any] | None, int | None]:
    """``(page, None)``, or ``(None, matching)`` when the page is past the end."""
    path = queues_path(query.vhost)
    try:
        data, reason = await api.management_page(path, page_params(query, page, page_size))
    except NotFound:
        raise NotFound(f"there is no vhost {query.vhost!r}") from None
    if data is None:
        found = _PAST_END_LEN.search(reason)
        return None, int(found.group(1)) if found else None
    return (data if isinstance(data, dict) else {}), None


async def _scanned_page(api: ManagementAPI, query: QueueQuery) -> QueuePage:
    policies: tuple[Policy, ...] | None = None
    if not query.needs_stats:
        policies = await load_policies(api, query.vhost)
    wanted = query.page * query.page_size  # matches needed to fill the asked page, +1 below
    matches: list[QueueRow] = []
    scanned = requests = 0
    total: int | None = None
    complete = False
    page = 1
    while scanned < query.scan_limit:
        data, _ = await _get_page(api, query, page, MAX_PAGE_SIZE)
        requests += 1
        if data is None:
            complete = True
            break
        total = as_int(data.get("total_count"))
        items = _items(data)
        for raw in items:
            scanned += 1
            row = queue_row(raw, query.needs_stats, policies)
            if _matches(row, query):
                matches.append(row)
        if not items or page >= (as_int(data.get("page_count")) or 0):
            complete = True
            break
        if len(matches) > wanted:
            break
        page += 1
    start = (query.page - 1) * query.page_size
    return QueuePage(
        items=tuple(matches[start : start + query.page_size]),
        query=query,
        total=total,
        filtered=len(matches) if complete else None,
        fetched_at=datetime.now(UTC),
        past_end=complete and start >= len(matches) > 0,
        scan=ScanInfo(scanned, query.scan_limit, complete, requests),
        requests=requests + (1 if policies is not None else 0),
    )


def _matches(row: QueueRow, query: QueueQuery) -> bool:
    if query.type is not None and row.type != query.type:
        return False
    if query.state is not None and row.state != query.state:
        return False
    return query.has_dlx is None or (row.dead_letter_exchange is not None) == query.has_dlx


def _items(data: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = data.get("items")
    return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []


def _rate(raw: Mapping[str, Any], stat: str, stats: bool) -> float | None:
    if not stats:
        return None
    details = (raw.get("message_stats") or {}).get(f"{stat}_details") or {}
    # No message_stats with statistics on means no activity in the window: 0/s.
    return as_float(details.get("rate")) or 0.0


def _reported_rate(raw: Mapping[str, Any], stat: str) -> float | None:
    """A queue's rate as RabbitMQ reports it: None (unknown) while it has no message statistics
    for the queue, like the metrics sampler; a rate missing inside reported statistics is 0."""
    stats = raw.get("message_stats")
    if not isinstance(stats, Mapping):
        return None
    details = stats.get(f"{stat}_details")
    return (as_float(details.get("rate")) or 0.0) if isinstance(details, Mapping) else 0.0


def queue_row(
    raw: Mapping[str, Any], stats: bool, policies: tuple[Policy, ...] | None = None
) -> QueueRow:
    name, vhost = as_text(raw.get("name")), as_text(raw.get("vhost"))
    arguments = as_mapping(raw.get("arguments"))
    effective = raw.get("effective_policy_definition") if stats else None
    named = as_text(raw.get("policy"))
    if effective is None and named and policies:
        # The queue names the policy RabbitMQ applies: its definition, as RabbitMQ's UI reads it.
        found = [p for p in policies if p.vhost == vhost and p.name == named]
        effective = found[0].definition if found else None
    dlx, _, source = effective_dlx(vhost, name, arguments, effective, policies)
    return QueueRow(
        vhost=vhost,
        name=name,
        type=as_text(raw.get("type")) or "classic",
        state=as_text(raw.get("state")) or None,
        messages=as_int(raw.get("messages")),
        ready=as_int(raw.get("messages_ready")),
        unacked=as_int(raw.get("messages_unacknowledged")),
        consumers=as_int(raw.get("consumers")) if stats else None,
        publish_rate=_rate(raw, "publish", stats),
        deliver_rate=_rate(raw, "deliver_get", stats),
        dead_letter_exchange=dlx,
        dlx_source=source,
        policy=as_text(raw.get("policy")) or None,
        durable=as_bool(raw.get("durable")),
        auto_delete=as_bool(raw.get("auto_delete")),
        exclusive=as_bool(raw.get("exclusive")),
    )


async def queue_summary(api: ManagementAPI, vhost: str, name: str) -> QueueRow:
    """One queue as a list row, in one request (for pages about a queue's messages)."""
    path = f"{queues_path(vhost)}/{quote_name(name)}"
    columns = BASE_COLUMNS + STATS_COLUMNS
    try:
        raw = await api.management_get(path, {"columns": columns})
    except NotFound:
        raise NotFound(
            f"queue {name!r} in vhost {vhost!r} does not exist (it may have just been deleted)"
        ) from None
    return queue_row({"vhost": vhost, "name": name, **as_mapping(raw)}, stats=True)


async def queue_detail(api: ManagementAPI, vhost: str, name: str, scan_limit: int) -> QueueDetail:
    path = f"{queues_path(vhost)}/{quote_name(name)}"
    try:
        raw, bindings_raw = await asyncio.gather(
            api.management_get(path), api.management_get(f"{path}/bindings")
        )
    except NotFound:
        raise NotFound(
            f"queue {name!r} in vhost {vhost!r} does not exist (it may have just been deleted)"
        ) from None
    if not isinstance(raw, Mapping):
        raise NotFound(f"queue {name!r} in vhost {vhost!r} does not exist")
    arguments = as_mapping(raw.get("arguments"))
    effective = as_mapping(raw.get("effective_policy_definition"))
    dlx, dlrk, source = effective_dlx(vhost, name, arguments, effective, None)
    bindings = tuple(parse_binding(b) for b in bindings_raw if isinstance(b, Mapping))
    details = raw.get("consumer_details")
    consumers, targets, (sources, scan) = await asyncio.gather(
        consumers_of(api, vhost, details if isinstance(details, list) else []),
        dead_letter_targets(api, vhost, dlx, dlrk, source),
        dead_letter_sources(api, vhost, name, bindings, scan_limit),
    )
    head = as_float(raw.get("head_message_timestamp"))
    return QueueDetail(
        vhost=vhost,
        name=name,
        type=as_text(raw.get("type")) or "classic",
        state=as_text(raw.get("state")) or None,
        node=as_text(raw.get("node")) or None,
        durable=as_bool(raw.get("durable")),
        auto_delete=as_bool(raw.get("auto_delete")),
        exclusive=as_bool(raw.get("exclusive")),
        arguments=dict(arguments),
        policy=as_text(raw.get("policy")) or None,
        operator_policy=as_text(raw.get("operator_policy")) or None,
        effective_policy=dict(effective),
        dead_letter_exchange=dlx,
        dead_letter_routing_key=dlrk,
        dlx_source=source,
        messages=as_int(raw.get("messages")),
        ready=as_int(raw.get("messages_ready")),
        unacked=as_int(raw.get("messages_unacknowledged")),
        message_bytes=as_int(raw.get("message_bytes")),
        publish_rate=_reported_rate(raw, "publish"),
        deliver_rate=_reported_rate(raw, "deliver_get"),
        ack_rate=_reported_rate(raw, "ack"),
        redeliver_rate=_reported_rate(raw, "redeliver"),
        head_message_timestamp=(
            datetime.fromtimestamp(head, tz=UTC) if head is not None and head > 0 else None
        ),
        idle_since=as_text(raw.get("idle_since")) or None,
        consumers=consumers,
        bindings=bindings,
        dead_letters_to=targets,
        dead_letters_from=sources,
        dead_letter_scan=scan,
        fetched_at=datetime.now(UTC),
    )
