"""RabbitMQ sampling for the metrics collector, over the management HTTP API.

Features: every queue's depth (ready, unacknowledged), publish, deliver/get
and ack rates and consumer count, and the properties the queue list shows
(type, state, policy, dead-letter exchange: kept only where they differ from a
running classic queue), read by walking the paginated queue list
500 rows at a time with the columns trimmed to exactly those fields; the
cluster's totals from ``/api/overview``; one queue on its own (for queues
someone is watching); every AMQP consumer with its connection, and Celery
workers recognised by their ``<hostname>.<namespace>.pidbox`` consumer.

Settings: the adapter's ``management_url``, credentials and ``timeout`` (every
request has it); ``page_size`` (the API caps it at 500) and ``concurrency``
(pages in flight at once) per sweep.

Cost: every page makes the broker list the vhost's queues, so a sweep costs
the broker O(queues x pages); at 10,000 queues about 2.5 s of management API
time on a 2-core machine, which bounds how often a cluster that size can be
sampled. Our own cost is decoding the JSON (about 1.4 MB per sweep).

Limitations: the management API's counts and rates lag the broker by its
statistics interval (5 s by default), so sampling a queue faster than that
repeats values; a watched queue's ready and consumer counts are therefore read
exactly with a passive ``queue.declare`` (``queue_stats``). Pages are read one
after another, not as one snapshot: a queue created or deleted during a sweep
may shift the rows, so a queue can be missed or seen twice in that sweep
(duplicates are dropped). ``/api/consumers`` is not paginated in 3.10 (one
response with every consumer, columns trimmed), and lists a new consumer before
its channel details (connection, peer) are known: until then it cannot be tied
to a Celery worker.
Rates are ``None`` (unknown) when the broker reports no message statistics
for a queue; a missing rate inside reported statistics is 0.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import aiormq.exceptions

from brokers.base import BrokerError, NotFound
from brokers.rabbitmq.adapter import quote_vhost
from brokers.rabbitmq.models import ManagementAPI

MAX_PAGE_SIZE = 500
QUEUE_COLUMNS = ",".join(
    (
        "name",
        "vhost",
        "messages",
        "messages_ready",
        "messages_unacknowledged",
        "consumers",
        "message_stats.publish_details.rate",
        "message_stats.deliver_get_details.rate",
        "message_stats.ack_details.rate",
        # What the queue list shows besides numbers (the list is served from samples).
        "type",
        "state",
        "policy",
        "arguments",
        "effective_policy_definition",
    )
)
CONSUMER_COLUMNS = ",".join(
    (
        "consumer_tag",
        "queue.name",
        "queue.vhost",
        "channel_details.name",
        "channel_details.connection_name",
        "channel_details.peer_host",
        "channel_details.user",
        "prefetch_count",
        "ack_required",
        "active",
    )
)
OVERVIEW_COLUMNS = "queue_totals,message_stats,object_totals"
PIDBOX_SUFFIX = ".pidbox"


class QueueStats(NamedTuple):
    """One queue at one sample. A NamedTuple, not a dataclass: a sweep makes
    10,000 of them every few seconds and tuples are several times cheaper."""

    vhost: str
    name: str
    messages: int | None
    ready: int | None
    unacked: int | None
    publish_rate: float | None
    deliver_rate: float | None
    ack_rate: float | None
    consumers: int | None
    attributes: dict[str, Any] | None = None
    """What differs from a running classic queue without policy or dead-letter
    exchange (``type``, ``state``, ``policy``, ``dlx``, ``dlx_source``); None: nothing."""


@dataclass(frozen=True)
class QueueSweep:
    """Every queue of the cluster (or of one vhost), and what reading them cost."""

    queues: tuple[QueueStats, ...]
    pages: int
    seconds: float
    total: int | None


@dataclass(frozen=True)
class ClusterTotals:
    messages: int | None
    ready: int | None
    unacked: int | None
    publish_rate: float | None
    deliver_rate: float | None
    ack_rate: float | None
    consumers: int | None
    queues: int | None
    connections: int | None


@dataclass(frozen=True)
class AmqpConsumer:
    """An AMQP consumer; ``celery_hostname`` is set for a Celery worker's consumers."""

    vhost: str
    queue: str
    tag: str
    channel: str
    connection: str
    peer_host: str
    user: str
    prefetch: int | None
    ack_required: bool | None
    active: bool | None
    celery_hostname: str | None = None

    @property
    def is_pidbox(self) -> bool:
        return self.queue.endswith(PIDBOX_SUFFIX)


# ``type(x) is int`` rather than isinstance: True is not a count, and this runs
# for every field of every queue of every sample.
def _int(value: object) -> int | None:
    if type(value) is int:
        return value
    return int(value) if isinstance(value, float) else None


def _float(value: object) -> float | None:
    if type(value) is float:
        return value
    return float(value) if type(value) is int else None


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _rate(stats: Mapping[str, Any] | None, name: str) -> float | None:
    if stats is None:
        return None
    details = stats.get(name)
    return _float(details.get("rate")) if isinstance(details, dict) else 0.0


def queue_attributes(raw: Mapping[str, Any]) -> dict[str, Any] | None:
    """The queue's non-default properties, kept small: most queues have none."""
    found: dict[str, Any] = {}
    kind = raw.get("type")
    if isinstance(kind, str) and kind != "classic":
        found["type"] = kind
    state = raw.get("state")
    if state != "running" and "state" in raw:
        found["state"] = state if isinstance(state, str) else None
    policy = raw.get("policy")
    if isinstance(policy, str) and policy:
        found["policy"] = policy
    arguments = raw.get("arguments")
    dlx = arguments.get("x-dead-letter-exchange") if isinstance(arguments, dict) else None
    if isinstance(dlx, str):
        found["dlx"], found["dlx_source"] = dlx, "argument"
    else:
        effective = raw.get("effective_policy_definition")
        dlx = effective.get("dead-letter-exchange") if isinstance(effective, dict) else None
        if isinstance(dlx, str):
            found["dlx"], found["dlx_source"] = dlx, "policy"
    return found or None


def queue_stats_of(raw: Mapping[str, Any]) -> QueueStats:
    stats = raw.get("message_stats")
    stats = stats if isinstance(stats, dict) else None
    return QueueStats(
        str(raw.get("vhost", "")),
        str(raw.get("name", "")),
        _int(raw.get("messages")),
        _int(raw.get("messages_ready")),
        _int(raw.get("messages_unacknowledged")),
        _rate(stats, "publish_details"),
        _rate(stats, "deliver_get_details"),
        _rate(stats, "ack_details"),
        _int(raw.get("consumers")),
        queue_attributes(raw),
    )


def _page_params(page: int, page_size: int) -> dict[str, str]:
    # No ``sort``: 3.10 already orders pages by name, and asking for
    # ``sort=name`` explicitly makes every page about four times as costly for
    # the broker (10,000 queues: 10 s instead of 2.5 s per sweep).
    return {"page": str(page), "page_size": str(page_size), "columns": QUEUE_COLUMNS}


async def sweep_queues(
    api: ManagementAPI,
    *,
    vhost: str | None = None,
    page_size: int = MAX_PAGE_SIZE,
    concurrency: int = 2,
) -> QueueSweep:
    """Every queue, by walking all pages; a failed page fails the whole sweep."""
    started = time.monotonic()
    path = "/api/queues" if vhost is None else f"/api/queues/{quote_vhost(vhost)}"
    page_size = max(1, min(MAX_PAGE_SIZE, page_size))
    try:
        first, _ = await api.management_page(path, _page_params(1, page_size))
    except NotFound:
        raise NotFound(f"there is no vhost {vhost!r}") from None
    first = first if isinstance(first, dict) else {}
    page_count = _int(first.get("page_count")) or 1
    pages: list[Any] = [first]
    if page_count > 1:
        limit = asyncio.Semaphore(max(1, concurrency))

        async def fetch(number: int) -> Any:
            async with limit:
                data, _ = await api.management_page(path, _page_params(number, page_size))
                return data

        pages += await asyncio.gather(*(fetch(n) for n in range(2, page_count + 1)))
    seen: dict[tuple[str, str], QueueStats] = {}
    for data in pages:
        items = data.get("items") if isinstance(data, dict) else None
        for raw in items if isinstance(items, list) else ():
            stats = queue_stats_of(raw)
            seen[(stats.vhost, stats.name)] = stats
    return QueueSweep(
        queues=tuple(seen.values()),
        pages=len(pages),
        seconds=time.monotonic() - started,
        total=_int(first.get("total_count")),
    )


async def queue_stats(api: ManagementAPI, vhost: str, name: str) -> QueueStats | None:
    """One queue (for a queue someone watches); None when it does not exist.

    The management API's counts lag by its statistics interval (5 s by default);
    when the adapter also speaks AMQP, the ready count and consumer count come
    from a passive ``queue.declare`` instead, exact at this moment (not for
    streams, which answer 0). Unacknowledged messages (and so the depth's
    unacked part) and the rates still come from the management API.
    """
    path = f"/api/queues/{quote_vhost(vhost)}/{quote_vhost(name)}"
    try:
        raw = await api.management_get(path, {"columns": QUEUE_COLUMNS})
    except NotFound:
        return None
    if not isinstance(raw, dict):
        return None
    stats = queue_stats_of(raw)
    amqp_channel = getattr(api, "amqp_channel", None)
    if amqp_channel is None or raw.get("type") == "stream":
        return stats
    try:
        async with amqp_channel(vhost) as channel:
            declared = await channel.queue_declare(name, passive=True, timeout=5)
    except (BrokerError, aiormq.exceptions.AMQPError, OSError, TimeoutError):
        return stats  # the management API's view is still an answer
    ready = int(declared.message_count or 0)
    return stats._replace(
        ready=ready,
        consumers=int(declared.consumer_count or 0),
        messages=ready + (stats.unacked or 0),
    )


async def cluster_totals(api: ManagementAPI) -> ClusterTotals:
    data = await api.management_get("/api/overview", {"columns": OVERVIEW_COLUMNS})
    data = data if isinstance(data, dict) else {}
    totals = data.get("queue_totals") or {}
    objects = data.get("object_totals") or {}
    stats = data.get("message_stats")
    stats = stats if isinstance(stats, dict) else None
    return ClusterTotals(
        messages=_int(totals.get("messages")),
        ready=_int(totals.get("messages_ready")),
        unacked=_int(totals.get("messages_unacknowledged")),
        publish_rate=_rate(stats, "publish_details"),
        deliver_rate=_rate(stats, "deliver_get_details"),
        ack_rate=_rate(stats, "ack_details"),
        consumers=_int(objects.get("consumers")),
        queues=_int(objects.get("queues")),
        connections=_int(objects.get("connections")),
    )


def celery_hostname(pidbox_queue: str) -> str | None:
    """``celery@web-1.example.celery.pidbox`` -> ``celery@web-1.example``.

    kombu names a worker's control queue ``<hostname>.<namespace>.pidbox``; the
    namespace (``celery`` unless ``control_exchange`` is set) has no dots.
    Reply queues (``<id>.reply.<namespace>.pidbox``) are not workers.
    """
    if not pidbox_queue.endswith(PIDBOX_SUFFIX):
        return None
    head = pidbox_queue[: -len(PIDBOX_SUFFIX)]
    hostname, dot, _namespace = head.rpartition(".")
    if not dot or not hostname or hostname.endswith(".reply"):
        return None
    return hostname


async def consumers(api: ManagementAPI, vhost: str | None = None) -> tuple[AmqpConsumer, ...]:
    """Every consumer (of ``vhost``, or all), Celery workers' labelled with their hostname.

    A worker's task consumers share the AMQP connection of its pidbox consumer.
    """
    path = "/api/consumers" if vhost is None else f"/api/consumers/{quote_vhost(vhost)}"
    try:
        data = await api.management_get(path, {"columns": CONSUMER_COLUMNS})
    except NotFound:
        raise NotFound(f"there is no vhost {vhost!r}") from None
    rows = data if isinstance(data, list) else []
    found: list[AmqpConsumer] = []
    workers: dict[str, str] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        queue = _mapping(row.get("queue"))
        channel = _mapping(row.get("channel_details"))
        consumer = AmqpConsumer(
            vhost=str(queue.get("vhost", "")),
            queue=str(queue.get("name", "")),
            tag=str(row.get("consumer_tag", "")),
            channel=str(channel.get("name", "")),
            connection=str(channel.get("connection_name", "")),
            peer_host=str(channel.get("peer_host", "") or ""),
            user=str(channel.get("user", "") or ""),
            prefetch=_int(row.get("prefetch_count")),
            ack_required=row.get("ack_required")
            if isinstance(row.get("ack_required"), bool)
            else None,
            active=row.get("active") if isinstance(row.get("active"), bool) else None,
        )
        hostname = celery_hostname(consumer.queue)
        if hostname and consumer.connection:
            workers[consumer.connection] = hostname
        found.append(consumer)
    if not workers:
        return tuple(found)
    return tuple(
        replace(c, celery_hostname=workers[c.connection]) if c.connection in workers else c
        for c in found
    )
