"""RabbitMQ exchanges and vhosts through the management API.

Features: a paginated exchange list (one request, name filter, trimmed
columns), an exchange with its bindings in both directions, and the vhost list
with message totals and rates plus the number of queues of each vhost.

Limitations: the number of queues per vhost is one small paginated request per
vhost (``page_size=1``), made concurrently for at most ``VHOST_COUNT_LIMIT``
vhosts; beyond that the count is unknown. ``/api/vhosts`` itself is not
paginated in 3.10, which is fine at the usual tens of vhosts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from brokers.base import NotFound
from brokers.rabbitmq.models import ExchangeDetail, ExchangePage, ExchangeRow, ManagementAPI, Vhost
from brokers.rabbitmq.routes import exchange_path, parse_binding
from brokers.rabbitmq.values import as_bool, as_float, as_int, as_text, quote_name

EXCHANGE_COLUMNS = (
    "name,vhost,type,durable,auto_delete,internal,arguments,"
    "message_stats.publish_in_details.rate,message_stats.publish_out_details.rate"
)
VHOST_COUNT_LIMIT = 50
# Binding lists are not paginated in 3.10; the default exchange is bound to every
# queue by name, so its list is never asked for.
MAX_BINDINGS = 1000


def _stat_rate(raw: Mapping[str, Any], stat: str) -> float | None:
    stats = raw.get("message_stats")
    if not isinstance(stats, Mapping):
        return None
    details = stats.get(f"{stat}_details")
    return as_float(details.get("rate")) if isinstance(details, Mapping) else None


def exchange_row(raw: Mapping[str, Any]) -> ExchangeRow:
    arguments = raw.get("arguments")
    return ExchangeRow(
        vhost=as_text(raw.get("vhost")),
        name=as_text(raw.get("name")),
        type=as_text(raw.get("type")),
        durable=as_bool(raw.get("durable")),
        auto_delete=as_bool(raw.get("auto_delete")),
        internal=as_bool(raw.get("internal")),
        arguments=dict(arguments) if isinstance(arguments, Mapping) else {},
        publish_in_rate=_stat_rate(raw, "publish_in"),
        publish_out_rate=_stat_rate(raw, "publish_out"),
    )


async def exchange_page(
    api: ManagementAPI, vhost: str | None, *, page: int, page_size: int, name: str
) -> ExchangePage:
    path = "/api/exchanges" if vhost is None else f"/api/exchanges/{quote_name(vhost, 'vhost')}"
    params = {
        "page": str(page),
        "page_size": str(page_size),
        "sort": "name",
        "columns": EXCHANGE_COLUMNS,
    }
    if name:
        params["name"] = name
    try:
        data, _ = await api.management_page(path, params)
    except NotFound:
        raise NotFound(f"there is no vhost {vhost!r}") from None
    now = datetime.now(UTC)
    if data is None:
        return ExchangePage((), vhost, page, page_size, name, None, None, now, past_end=True)
    items = data.get("items") if isinstance(data, Mapping) else None
    return ExchangePage(
        items=tuple(exchange_row(i) for i in (items or []) if isinstance(i, Mapping)),
        vhost=vhost,
        page=page,
        page_size=page_size,
        name=name,
        total=as_int(data.get("total_count")),
        filtered=as_int(data.get("filtered_count")),
        fetched_at=now,
    )


async def _bindings(api: ManagementAPI, path: str, skip: bool) -> list[object]:
    data = [] if skip else await api.management_get(path)
    return data if isinstance(data, list) else []


async def exchange_detail(api: ManagementAPI, vhost: str, name: str) -> ExchangeDetail:
    path = exchange_path(vhost, name)
    try:
        raw, out, into = await asyncio.gather(
            api.management_get(path),
            _bindings(api, f"{path}/bindings/source", skip=name == ""),
            _bindings(api, f"{path}/bindings/destination", skip=name == ""),
        )
    except NotFound:
        raise NotFound(
            f"exchange {name!r} in vhost {vhost!r} does not exist (it may have just been deleted)"
        ) from None
    if not isinstance(raw, Mapping):
        raise NotFound(f"exchange {name!r} in vhost {vhost!r} does not exist")
    return ExchangeDetail(
        exchange=exchange_row(raw),
        policy=as_text(raw.get("policy")) or None,
        bindings_out=tuple(parse_binding(b) for b in out[:MAX_BINDINGS] if isinstance(b, Mapping)),
        bindings_in=tuple(parse_binding(b) for b in into[:MAX_BINDINGS] if isinstance(b, Mapping)),
        bindings_out_total=len(out),
        bindings_in_total=len(into),
        fetched_at=datetime.now(UTC),
    )


async def vhosts(api: ManagementAPI) -> tuple[Vhost, ...]:
    data = await api.management_get(
        "/api/vhosts",
        params={
            "columns": "name,description,tracing,messages,messages_ready,"
            "messages_unacknowledged,message_stats.publish_details.rate,"
            "message_stats.deliver_get_details.rate"
        },
    )
    rows = [v for v in (data if isinstance(data, list) else []) if isinstance(v, Mapping)]
    counts = await asyncio.gather(
        *(_queue_count(api, as_text(v.get("name"))) for v in rows[:VHOST_COUNT_LIMIT])
    )
    return tuple(
        Vhost(
            name=as_text(v.get("name")),
            description=as_text(v.get("description")),
            tracing=as_bool(v.get("tracing")),
            messages=as_int(v.get("messages")),
            ready=as_int(v.get("messages_ready")),
            unacked=as_int(v.get("messages_unacknowledged")),
            publish_rate=_stat_rate(v, "publish"),
            deliver_rate=_stat_rate(v, "deliver_get"),
            queues=counts[i] if i < len(counts) else None,
        )
        for i, v in enumerate(rows)
    )


async def _queue_count(api: ManagementAPI, vhost: str) -> int | None:
    params = {"page": "1", "page_size": "1", "columns": "name", "disable_stats": "true"}
    try:
        data, _ = await api.management_page(f"/api/queues/{quote_name(vhost, 'vhost')}", params)
    except NotFound:  # deleted since the list was read
        return None
    return as_int(data.get("total_count")) if isinstance(data, Mapping) else None
