"""Every queue from RabbitMQ's Prometheus plugin, for clusters too large to walk page by page.

Features: one ``GET /metrics/detailed`` per node (``rabbitmq_prometheus``,
3.10 and later) with the per-object families ``queue_coarse_metrics`` (ready,
unacknowledged, total messages), ``channel_queue_metrics`` (deliveries, gets
and acks per channel and queue) and ``channel_queue_exchange_metrics``
(messages routed to a queue per channel and exchange), limited to the sampled
vhosts (``vhost=``). RabbitMQ reads them straight from its metric tables: the
cost grows with the number of queues once, where every page of the management
API's queue list lists the whole vhost again (50,000 queues: 100 pages of 500,
each listing 50,000). A queue's consumers are counted in the consumer list the
sampler reads anyway (``queue_consumer_count`` would add a line per queue, a
fifth of the text).

Rates: the plugin gives counters, not rates. :class:`CounterRates` keeps each
(channel, queue) series between samples and turns the growth into messages per
second over the time between the two samples: publish (routed to the queue),
deliver/get (deliveries and gets, both acknowledgement modes) and ack, the
same events as the management API's rates. A series that appears counts from
zero; one that disappears (its channel closed) adds nothing for that interval.
The first sample of a sampler has no rates (``None``: unknown); later a queue
without any series has rate 0.

Properties (type, policy, dead-letter exchange) are not metrics: they come
from the vhost's definitions (``/api/definitions/<vhost>``, one request
listing queues with their arguments and the vhost's policies), read again
every ``ATTRIBUTES_SECONDS``; the effective policy is the matching policy of
highest priority (``apply-to`` all or queues, the pattern a regular expression
searched in the name). Operator policies and a queue's state are not known
this way: a queue is shown as running.

Settings: ``prometheus_urls`` of the cluster (one per node: each node reports
the queues whose process runs on it and the channels connected to it; every
node is read and the answers merged), the adapter's ``timeout``.

Limitations: a queue whose process is down (or on a node not listed) is
missing from the sample; the definitions lag by up to ``ATTRIBUTES_SECONDS``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from brokers.rabbitmq.metrics import QueueStats

FAMILIES = (
    "queue_coarse_metrics",
    "channel_queue_metrics",
    "channel_queue_exchange_metrics",
)
ATTRIBUTES_SECONDS = 60.0

_PREFIX = "rabbitmq_detailed_"
_READY = "queue_messages_ready"
_UNACKED = "queue_messages_unacked"
_MESSAGES = "queue_messages"
_CONSUMERS = "queue_consumers"
_PUBLISH = "queue_messages_published_total"
_DELIVER_GET = frozenset(
    {
        "channel_get_ack_total",
        "channel_get_total",
        "channel_messages_delivered_ack_total",
        "channel_messages_delivered_total",
    }
)
_ACK = "channel_messages_acked_total"
_QUEUE_GAUGES = {_READY: 0, _UNACKED: 1, _MESSAGES: 2, _CONSUMERS: 3}
_COUNTERS = {_PUBLISH: 0, _ACK: 2, **dict.fromkeys(_DELIVER_GET, 1)}
_GAUGE_LINE = re.compile(
    r"^rabbitmq_detailed_(queue_messages_ready|queue_messages_unacked"
    r'|queue_consumers)\{vhost="([^"\\]*)",queue="([^"\\]*)"\} (\S+)$',
    re.MULTILINE,
)
"""A queue gauge line without escapes in its labels (nearly all of them); not the total
(``queue_messages``), which is ready plus unacknowledged: a third fewer lines to take."""
_COUNTER_LINE = re.compile(
    r"^rabbitmq_detailed_(queue_messages_published_total|channel_[a-z_]+_total)"
    r"\{(.*)\} (\S+)$",
    re.MULTILINE,
)
"""A counter line: its metric, labels (escapes kept: they are only a series' name) and value."""
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
_UNESCAPE = re.compile(r"\\(.)")


def _unescape(value: str) -> str:
    return _UNESCAPE.sub(lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def _labels(text: str) -> dict[str, str]:
    """``a="x",b="y"`` as a dict; the exposition format escapes ``\\``, ``"`` and newlines."""
    if "\\" not in text:
        # No escapes: a value cannot hold a quote, so '",' only ends a value.
        found = {}
        for pair in text.rstrip(",").split('",'):
            name, _, value = pair.partition('="')
            found[name] = value.removesuffix('"')
        return found
    return {m.group(1): _unescape(m.group(2)) for m in _LABEL.finditer(text)}


@dataclass
class Scrape:
    """What one sample read from the nodes: queue gauges and counter series."""

    gauges: dict[tuple[str, str], list[int | None]] = field(default_factory=dict)
    """(vhost, queue) -> [ready, unacked, messages, consumers]"""
    counters: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    """(metric, series labels, vhost, queue) -> counter value"""


def parse(text: str, scrape: Scrape | None = None) -> Scrape:
    """The families of ``FAMILIES`` in a ``/metrics/detailed`` answer (text format 0.0.4).

    Tens of thousands of queues make megabytes of text every sample: the usual
    gauge line (labels ``vhost`` and ``queue`` without escapes) and the counter
    lines are each found by one regular expression over the whole text; only
    gauge lines with escaped labels (when the text has a backslash) are taken
    apart one by one.
    """
    scrape = scrape or Scrape()
    gauges, counters = scrape.gauges, scrape.counters
    slots = _QUEUE_GAUGES
    for metric, vhost, queue, value in _GAUGE_LINE.findall(text):
        entry = gauges.get(key := (vhost, queue))
        if entry is None:
            entry = gauges[key] = [None, None, None, None]
        entry[slots[metric]] = _count(value)
    if "\\" in text:
        for line in text.splitlines():
            if "\\" not in line or not line.startswith(_PREFIX):
                continue
            head, _, value = line.rpartition(" ")
            name, _, labels = head.partition("{")
            slot = slots.get(name[len(_PREFIX) :])
            if slot is not None and not _GAUGE_LINE.match(line):
                found = _labels(labels[:-1])
                key = (found.get("vhost", ""), found.get("queue", ""))
                entry = gauges.get(key)
                if entry is None:
                    entry = gauges[key] = [None, None, None, None]
                entry[slot] = _count(value)
    for metric, labels, value in _COUNTER_LINE.findall(text):
        found = _labels(labels)
        vhost = found.get("queue_vhost") or found.get("vhost", "")
        counters[(metric, labels, vhost, found.get("queue", ""))] = float(value)
    return scrape


def _count(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        return int(float(value))


class CounterRates:
    """Per-queue rates from counter series, between one sample and the next."""

    def __init__(self) -> None:
        self._last: dict[tuple[str, str, str, str], float] = {}
        self._at: float | None = None

    def rates(
        self, counters: Mapping[tuple[str, str, str, str], float], now: float | None = None
    ) -> dict[tuple[str, str], list[float]] | None:
        """(vhost, queue) -> [publish, deliver_get, ack] per second; None on the first call."""
        now = time.monotonic() if now is None else now
        last, at = self._last, self._at
        self._last, self._at = dict(counters), now
        if at is None or now <= at:
            return None
        grown: dict[tuple[str, str], list[float]] = {}
        for series, value in counters.items():
            delta = value - last.get(series, 0.0)
            if delta <= 0:
                continue
            queue = (series[2], series[3])
            sums = grown.get(queue)
            if sums is None:
                sums = grown[queue] = [0.0, 0.0, 0.0]
            sums[_COUNTERS[series[0]]] += delta
        elapsed = now - at
        return {q: [round(v / elapsed, 2) for v in sums] for q, sums in grown.items()}


@dataclass(frozen=True)
class Policy:
    name: str
    pattern: re.Pattern[str]
    apply_to: str
    priority: int
    definition: Mapping[str, Any]


def policies_of(rows: Iterable[Any]) -> dict[str, list[Policy]]:
    """The vhosts' policies that apply to queues, highest priority first, by vhost."""
    found: dict[str, list[Policy]] = {}
    for row in rows:
        if not isinstance(row, dict) or row.get("apply-to", "all") not in ("all", "queues"):
            continue
        try:
            pattern = re.compile(str(row.get("pattern", "")))
        except re.error:
            continue
        priority = row.get("priority")
        definition = row.get("definition")
        found.setdefault(str(row.get("vhost", "")), []).append(
            Policy(
                name=str(row.get("name", "")),
                pattern=pattern,
                apply_to=str(row.get("apply-to", "all")),
                priority=priority if type(priority) is int else 0,
                definition=definition if isinstance(definition, dict) else {},
            )
        )
    for policies in found.values():
        policies.sort(key=lambda p: -p.priority)
    return found


def attributes_of(
    definitions: Mapping[str, Any], vhost: str | None
) -> dict[tuple[str, str], dict[str, Any]]:
    """(vhost, queue) -> the queue's non-default properties, from a definitions export.

    The same keys as :func:`brokers.rabbitmq.metrics.queue_attributes` (``type``,
    ``policy``, ``dlx``, ``dlx_source``), except ``state``. A per-vhost export
    names no vhost on its rows: ``vhost`` is theirs.
    """

    def vhost_of(row: Mapping[str, Any]) -> str:
        return str(row.get("vhost", vhost or ""))

    policies = policies_of(
        {**row, "vhost": vhost_of(row)}
        for row in definitions.get("policies") or ()
        if isinstance(row, dict)
    )
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in definitions.get("queues") or ():
        if not isinstance(row, dict):
            continue
        where, name = vhost_of(row), str(row.get("name", ""))
        arguments = row.get("arguments")
        arguments = arguments if isinstance(arguments, dict) else {}
        attributes: dict[str, Any] = {}
        kind = arguments.get("x-queue-type")
        if isinstance(kind, str) and kind != "classic":
            attributes["type"] = kind
        policy = next((p for p in policies.get(where, ()) if p.pattern.search(name)), None)
        if policy is not None:
            attributes["policy"] = policy.name
        dlx = arguments.get("x-dead-letter-exchange")
        if isinstance(dlx, str):
            attributes["dlx"], attributes["dlx_source"] = dlx, "argument"
        elif policy is not None and isinstance(policy.definition.get("dead-letter-exchange"), str):
            attributes["dlx"] = policy.definition["dead-letter-exchange"]
            attributes["dlx_source"] = "policy"
        if attributes:
            found[(where, name)] = attributes
    return found


def queue_stats(
    scrape: Scrape,
    rates: Mapping[tuple[str, str], list[float]] | None,
    attributes: Mapping[tuple[str, str], dict[str, Any]],
    consumers: Mapping[tuple[str, str], int],
) -> list[QueueStats]:
    """One :class:`QueueStats` per queue the nodes reported gauges for; its consumers
    from the scrape when it had them, else from ``consumers`` (absent: none)."""
    found = []
    none: list[float | None] = [None, None, None]
    zero: list[float | None] = [0.0, 0.0, 0.0]
    for (vhost, name), (ready, unacked, messages, count) in scrape.gauges.items():
        if rates is None:
            publish, deliver, ack = none
        else:
            publish, deliver, ack = rates.get((vhost, name)) or zero
        if messages is None and ready is not None and unacked is not None:
            messages = ready + unacked
        found.append(
            QueueStats(
                vhost,
                name,
                messages,
                ready,
                unacked,
                publish,
                deliver,
                ack,
                count if count is not None else consumers.get((vhost, name), 0),
                attributes.get((vhost, name)),
            )
        )
    return found
