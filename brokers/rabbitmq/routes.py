"""Who a RabbitMQ queue talks to: bindings, consumers (with Celery hostnames), dead-letter routes.

Celery workers' consumer tags say nothing, but every worker also consumes its
``<hostname>.celery.pidbox`` queue on the same connection as its task
consumers, so the pidbox consumer names the worker of every consumer on that
connection. Dead-letter routes follow RabbitMQ's rules: a queue argument wins
over a policy key by key; the default exchange routes to the queue named by the
routing key; direct, topic and fanout bindings are evaluated here, headers
exchanges are listed with a note. Without a dead-letter routing key a message
keeps its own routing key, which only the message knows: such routes are
listed with a note saying so.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from brokers.base import NotFound
from brokers.rabbitmq.models import (
    MAX_PAGE_SIZE,
    Binding,
    Consumer,
    DeadLetterLink,
    ManagementAPI,
    ScanInfo,
)
from brokers.rabbitmq.values import as_bool, as_int, as_mapping, as_text, quote_name

PIDBOX_SUFFIX = ".celery.pidbox"


@dataclass(frozen=True)
class Policy:
    vhost: str
    name: str
    pattern: str
    apply_to: str
    priority: int
    definition: Mapping[str, Any] = field(default_factory=dict)

    def applies_to_queue(self, vhost: str, name: str, queue_type: str | None = None) -> bool:
        """Whether RabbitMQ applies this policy to queue ``name`` (of ``queue_type``, when
        known: then ``apply-to`` may also name that type, e.g. ``quorum_queues``)."""
        typed = queue_type is not None and self.apply_to == f"{queue_type}_queues"
        if self.vhost != vhost or not (self.apply_to in ("all", "queues") or typed):
            return False
        regex = _compile(self.pattern)
        return regex is not None and regex.search(name) is not None


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        return None


async def load_policies(
    api: ManagementAPI, vhost: str | None, *, operator: bool = False
) -> tuple[Policy, ...]:
    """The policies (``operator``: the operator policies) of ``vhost``, or of every vhost."""
    path = "/api/operator-policies" if operator else "/api/policies"
    if vhost is not None:
        path += f"/{quote_name(vhost, 'vhost')}"
    try:
        data = await api.management_get(path)
    except NotFound:
        return ()
    return tuple(
        Policy(
            vhost=as_text(p.get("vhost")),
            name=as_text(p.get("name")),
            pattern=as_text(p.get("pattern")),
            apply_to=as_text(p.get("apply-to")) or "all",
            priority=as_int(p.get("priority")) or 0,
            definition=as_mapping(p.get("definition")),
        )
        for p in (data if isinstance(data, list) else [])
        if isinstance(p, Mapping)
    )


def policy_for(
    policies: Sequence[Policy], vhost: str, name: str, queue_type: str | None = None
) -> Policy | None:
    """The policy RabbitMQ applies to the queue: the highest priority, then the greatest name."""
    matching = [p for p in policies if p.applies_to_queue(vhost, name, queue_type)]
    return max(matching, key=lambda p: (p.priority, p.name), default=None)


def effective_dlx(
    vhost: str,
    name: str,
    arguments: Mapping[str, Any],
    effective: Mapping[str, Any] | None,
    policies: Sequence[Policy] | None,
) -> tuple[str | None, str | None, str | None]:
    """``(exchange, routing key, "argument" | "policy")`` of a queue's dead-letter route.

    ``effective`` is the broker's effective policy definition when known; else
    ``policies`` are matched here; with neither, only arguments count.
    """
    definition: Mapping[str, Any] = {}
    if isinstance(effective, Mapping):
        definition = effective
    elif policies:
        found = policy_for(policies, vhost, name)
        definition = found.definition if found is not None else {}
    dlx, source = arguments.get("x-dead-letter-exchange"), "argument"
    if not isinstance(dlx, str):
        dlx, source = definition.get("dead-letter-exchange"), "policy"
    if not isinstance(dlx, str):
        return None, None, None
    key = arguments.get("x-dead-letter-routing-key")
    if not isinstance(key, str):
        key = definition.get("dead-letter-routing-key")
    return dlx, key if isinstance(key, str) else None, source


def parse_binding(raw: Mapping[str, Any]) -> Binding:
    arguments = raw.get("arguments")
    return Binding(
        vhost=as_text(raw.get("vhost")),
        source=as_text(raw.get("source")),
        destination=as_text(raw.get("destination")),
        destination_type=as_text(raw.get("destination_type")),
        routing_key=as_text(raw.get("routing_key")),
        arguments=dict(arguments) if isinstance(arguments, Mapping) else {},
    )


def exchange_path(vhost: str, exchange: str) -> str:
    # The default exchange is "amq.default" in management API paths.
    return f"/api/exchanges/{quote_name(vhost, 'vhost')}/{quote_name(exchange or 'amq.default')}"


# -- consumers -----------------------------------------------------------------


async def consumers_of(
    api: ManagementAPI, vhost: str, details: Sequence[object]
) -> tuple[Consumer, ...]:
    rows = [d for d in details if isinstance(d, Mapping)]
    if not rows:
        return ()
    workers = await celery_workers(api, vhost)
    consumers = []
    for row in rows:
        channel = as_mapping(row.get("channel_details"))
        queue = as_mapping(row.get("queue"))
        connection = as_text(channel.get("connection_name"))
        host, port = as_text(channel.get("peer_host")), as_int(channel.get("peer_port"))
        consumers.append(
            Consumer(
                queue=as_text(queue.get("name")),
                vhost=as_text(queue.get("vhost")) or vhost,
                tag=as_text(row.get("consumer_tag")),
                prefetch=as_int(row.get("prefetch_count")),
                ack_required=as_bool(row.get("ack_required")),
                exclusive=as_bool(row.get("exclusive")),
                active=as_bool(row.get("active")),
                connection_name=connection,
                channel_name=as_text(channel.get("name")),
                peer=f"{host}:{port}" if host and port is not None else host,
                user=as_text(channel.get("user")),
                celery_hostname=workers.get(connection),
            )
        )
    return tuple(consumers)


async def celery_workers(api: ManagementAPI, vhost: str) -> dict[str, str]:
    """Connection name -> Celery worker hostname, from the vhost's pidbox consumers."""
    try:
        data = await api.management_get(
            f"/api/consumers/{quote_name(vhost, 'vhost')}",
            params={"columns": "queue.name,channel_details.connection_name"},
        )
    except NotFound:
        return {}
    workers = {}
    for row in data if isinstance(data, list) else []:
        queue = as_text(as_mapping(as_mapping(row).get("queue")).get("name"))
        channel = as_mapping(as_mapping(row).get("channel_details"))
        connection = as_text(channel.get("connection_name"))
        if queue.endswith(PIDBOX_SUFFIX) and connection:
            workers[connection] = queue[: -len(PIDBOX_SUFFIX)]
    return workers


# -- dead-letter routes ----------------------------------------------------------


def topic_matches(pattern: str, key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more words."""
    words, keys = pattern.split("."), key.split(".")
    # reach[j]: the pattern so far can consume exactly the first j words of the key.
    reach = [True] + [False] * len(keys)
    for word in words:
        if word == "#":
            for j in range(1, len(keys) + 1):
                reach[j] = reach[j] or reach[j - 1]
        else:
            reach = [False] + [
                reach[j] and (word == "*" or word == keys[j]) for j in range(len(keys))
            ]
    return reach[-1]


def binding_takes(kind: str, binding_key: str, dl_key: str | None) -> tuple[bool, str]:
    """Does a dead letter with routing key ``dl_key`` (None: the message's own) take
    a binding with ``binding_key`` on an exchange of ``kind``? And a note if unsure."""
    if kind == "fanout":
        return True, ""
    if kind in ("direct", "topic"):
        if dl_key is None:
            return True, f"only messages whose own routing key matches {binding_key!r}"
        if kind == "direct":
            return binding_key == dl_key, ""
        return topic_matches(binding_key, dl_key), ""
    return True, f"{kind or 'unknown'} exchange: depends on each message"


async def _exchange_type(api: ManagementAPI, vhost: str, exchange: str) -> str | None:
    if exchange == "":
        return "direct"
    try:
        data = await api.management_get(exchange_path(vhost, exchange), {"columns": "type"})
    except NotFound:
        return None
    return as_text(data.get("type")) if isinstance(data, Mapping) else None


async def dead_letter_targets(
    api: ManagementAPI, vhost: str, dlx: str | None, dlrk: str | None, via: str | None
) -> tuple[DeadLetterLink, ...]:
    """Queues this queue's dead letters go to (one hop; exchange-to-exchange noted)."""
    if dlx is None or via is None:
        return ()
    if dlx == "":
        if dlrk is None:
            note = "default exchange without a routing key: back to the queue named by the key"
            return (DeadLetterLink(vhost, "", "", None, via, note),)
        return (DeadLetterLink(vhost, dlrk, "", dlrk, via),)
    kind, bindings = await asyncio.gather(
        _exchange_type(api, vhost, dlx), _bindings_from(api, vhost, dlx)
    )
    if kind is None:
        note = f"exchange {dlx!r} does not exist: dead letters are dropped"
        return (DeadLetterLink(vhost, "", dlx, dlrk, via, note),)
    links = []
    for binding in bindings:
        taken, note = binding_takes(kind, binding.routing_key, dlrk)
        if not taken:
            continue
        if binding.destination_type != "queue":
            note = f"to exchange {binding.destination!r}, not followed further"
            links.append(DeadLetterLink(vhost, "", dlx, binding.routing_key, via, note))
        else:
            links.append(
                DeadLetterLink(vhost, binding.destination, dlx, binding.routing_key, via, note)
            )
    if not links:
        note = f"no binding of {dlx!r} matches: dead letters are dropped"
        return (DeadLetterLink(vhost, "", dlx, dlrk, via, note),)
    return tuple(links)


async def _bindings_from(api: ManagementAPI, vhost: str, exchange: str) -> list[Binding]:
    try:
        data = await api.management_get(f"{exchange_path(vhost, exchange)}/bindings/source")
    except NotFound:
        return []
    return [parse_binding(b) for b in (data if isinstance(data, list) else [])]


async def dead_letter_sources(
    api: ManagementAPI, vhost: str, name: str, bindings: Sequence[Binding], scan_limit: int
) -> tuple[tuple[DeadLetterLink, ...], ScanInfo]:
    """Queues whose dead letters can reach this one, by reading up to ``scan_limit``
    queues of the vhost (the management API cannot search by argument)."""
    by_exchange: dict[str, list[Binding]] = {}
    for binding in bindings:
        by_exchange.setdefault(binding.source, []).append(binding)
    exchanges = sorted(by_exchange)
    kinds, policies, (rows, scan) = await asyncio.gather(
        asyncio.gather(*(_exchange_type(api, vhost, e) for e in exchanges)),
        load_policies(api, vhost),
        _scan_arguments(api, vhost, scan_limit),
    )
    kind_of = dict(zip(exchanges, kinds, strict=True))
    links = []
    for queue, arguments in rows:
        dlx, dlrk, via = effective_dlx(vhost, queue, arguments, None, policies)
        if dlx is None or via is None or dlx not in by_exchange:
            continue
        for binding in by_exchange[dlx]:
            taken, note = binding_takes(kind_of.get(dlx) or "", binding.routing_key, dlrk)
            if dlx == "" and dlrk is None:
                taken, note = queue == name, ""
            if taken:
                links.append(DeadLetterLink(vhost, queue, dlx, dlrk, via, note))
                break
    return tuple(links), scan


async def _scan_arguments(
    api: ManagementAPI, vhost: str, limit: int
) -> tuple[list[tuple[str, Mapping[str, Any]]], ScanInfo]:
    path = f"/api/queues/{quote_name(vhost, 'vhost')}"
    base = {"columns": "name,arguments", "disable_stats": "true", "sort": "name"}

    async def page(number: int) -> Mapping[str, Any]:
        params = {**base, "page": str(number), "page_size": str(MAX_PAGE_SIZE)}
        data, _ = await api.management_page(path, params)
        return data if isinstance(data, Mapping) else {}

    first = await page(1)
    pages = min(as_int(first.get("page_count")) or 1, max(1, -(-limit // MAX_PAGE_SIZE)))
    rest = await asyncio.gather(*(page(n) for n in range(2, pages + 1)))
    rows = []
    for data in (first, *rest):
        for item in data.get("items") or []:
            if isinstance(item, Mapping):
                arguments = item.get("arguments")
                rows.append(
                    (as_text(item.get("name")), arguments if isinstance(arguments, Mapping) else {})
                )
    total = as_int(first.get("total_count")) or len(rows)
    return rows, ScanInfo(len(rows), limit, len(rows) >= total, pages)
