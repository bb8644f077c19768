"""The queue list from the collector's latest sample, or live from the management API.

:func:`get_queue_list` answers from the snapshot (``dashboard.metrics.snapshot_lists``)
unless asked for a live read, or the snapshot is missing, stale, or does not
cover the vhost asked for (``MQB_METRICS_RABBITMQ_VHOSTS``). Over the snapshot
every filter is exact (no scan limit: type, state and dead-letter exchange come
with the sample), sorts follow the management API's (a missing number sorts
after every number; descending reverses the whole order) and consumers and
rates are always there. Sort orders are computed once per sample and process.
Durable, auto-delete and exclusive flags are not sampled: unknown (null) in
rows served from the snapshot. A regular-expression name filter runs on RE2
(linear time, whatever the pattern); a pattern RE2 cannot run (lookaround,
backreferences) is left to the broker: a live read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import re2  # type: ignore[import-untyped]
from django.conf import settings

from brokers.base.metrics import FIELDS, Values, split_queue_entity
from brokers.rabbitmq.models import QueuePage, QueueQuery, QueueRow
from dashboard.browse.rabbitmq.browse import get_queue_page
from dashboard.metrics.snapshot_lists import Freshness, Snapshot, live, read_listing

SORT_FIELDS = {
    "depth": FIELDS.index("depth"),
    "ready": FIELDS.index("ready"),
    "unacked": FIELDS.index("unacked"),
    "consumers": FIELDS.index("consumers"),
    "publish_rate": FIELDS.index("publish_rate"),
    "deliver_rate": FIELDS.index("deliver_rate"),
}
_MISSING = float("inf")


_MATCH_FIELDS = ("sort", "reverse", "vhost", "name", "regex", "type", "state", "has_dlx")
"""What selects and orders a list's rows (not the page)."""
MEMO_QUERIES = 64
"""Filtered orders kept per index (one sample): a list asked again is paged at once."""


@dataclass
class QueueIndex:
    """Every sampled queue as (vhost, name, values, extra), with memoised sort orders
    and, for the last ``MEMO_QUERIES`` filters, the matching rows and the vhost's count."""

    rows: list[tuple[str, str, Values, dict[str, Any]]]
    folded: list[str]
    _orders: dict[tuple[str, bool], list[int]] = field(default_factory=dict)
    _matched: dict[tuple[Any, ...], tuple[list[int], int]] = field(default_factory=dict)

    def warm_from(self, previous: QueueIndex) -> None:
        """Compute again the orders and filters ``previous`` was asked for (the index of
        the sample before), before this one is served."""
        for sort, reverse in list(previous._orders):
            self.order(sort, reverse)
        for key in list(previous._matched):
            self._matching(QueueQuery(**dict(zip(_MATCH_FIELDS, key, strict=True))))

    @classmethod
    def build(cls, snapshot: Snapshot) -> QueueIndex:
        extras = dict(snapshot.extras("queue"))
        rows = []
        for entity, values in snapshot.rows("queue"):
            vhost, name = split_queue_entity(entity)
            rows.append((vhost, name, values, extras.get(entity) or {}))
        return cls(rows, [r[1].casefold() for r in rows])

    def order(self, sort: str, reverse: bool) -> list[int]:
        found = self._orders.get((sort, reverse))
        if found is None:
            found = list(range(len(self.rows)))
            rows = self.rows
            if sort in SORT_FIELDS:
                at = SORT_FIELDS[sort]

                def number(i: int) -> tuple[float, str, str]:
                    v = rows[i][2][at]
                    return (_MISSING if v is None else v, rows[i][1], rows[i][0])

                found.sort(key=number)
            else:
                found.sort(key=lambda i: (rows[i][1], rows[i][0]))
            if reverse:
                found.reverse()
            self._orders[(sort, reverse)] = found
        return found

    def _matching(self, query: QueueQuery) -> tuple[list[int], int]:
        key = tuple(getattr(query, f) for f in _MATCH_FIELDS)
        found = self._matched.get(key)
        if found is None:
            search = _regex(query.name) if query.name and query.regex else None
            matches = [
                i for i in self.order(query.sort, query.reverse) if self._matches(i, query, search)
            ]
            in_scope = (
                len(self.rows)
                if query.vhost is None
                else sum(1 for r in self.rows if r[0] == query.vhost)
            )
            if len(self._matched) >= MEMO_QUERIES:
                self._matched.pop(next(iter(self._matched)))
            found = self._matched[key] = (matches, in_scope)
        return found

    def page(self, query: QueueQuery, freshness: Freshness) -> QueuePage:
        matches, in_scope = self._matching(query)
        start = (query.page - 1) * query.page_size
        shown = matches[start : start + query.page_size]
        return QueuePage(
            items=tuple(self._row(i) for i in shown),
            query=query,
            total=in_scope,
            filtered=len(matches),
            fetched_at=freshness.as_of,
            past_end=start >= len(matches) > 0,
            requests=0,
        )

    def _matches(self, i: int, query: QueueQuery, search: Callable[[str], object] | None) -> bool:
        vhost, name, _, extra = self.rows[i]
        if query.vhost is not None and vhost != query.vhost:
            return False
        if query.name:
            if search is not None:
                if search(name) is None:
                    return False
            elif query.name.casefold() not in self.folded[i]:
                return False
        if query.type is not None and extra.get("type", "classic") != query.type:
            return False
        if query.state is not None and extra.get("state", "running") != query.state:
            return False
        return query.has_dlx is None or ("dlx" in extra) == query.has_dlx

    def _row(self, i: int) -> QueueRow:
        vhost, name, values, extra = self.rows[i]
        v = dict(zip(FIELDS, values, strict=True))
        dlx = extra.get("dlx")
        return QueueRow(
            vhost=vhost,
            name=name,
            type=str(extra.get("type", "classic")),
            state=extra.get("state", "running"),
            messages=v["depth"],  # type: ignore[arg-type]
            ready=v["ready"],  # type: ignore[arg-type]
            unacked=v["unacked"],  # type: ignore[arg-type]
            consumers=v["consumers"],  # type: ignore[arg-type]
            publish_rate=v["publish_rate"],
            deliver_rate=v["deliver_rate"],
            dead_letter_exchange=dlx if isinstance(dlx, str) else None,
            dlx_source=extra.get("dlx_source") if isinstance(dlx, str) else None,
            policy=extra.get("policy"),
        )


def _regex(pattern: str) -> Callable[[str], object] | None:
    """The pattern's case-insensitive search on RE2, or None when RE2 cannot run it."""
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = 8 << 20
    try:
        return re2.compile(pattern, options).search  # type: ignore[no-any-return]
    except re2.error:
        return None


async def get_queue_list(
    slug: str, query: QueueQuery, *, live_read: bool = False
) -> tuple[QueuePage, Freshness]:
    """One page of queues and where it came from (the snapshot unless it cannot answer)."""
    reason = "asked for a live read" if live_read else _uncovered(query)
    if not reason:
        listing = await read_listing(slug, "queues", QueueIndex.build)
        if not isinstance(listing, str):
            return listing.index.page(query, listing.freshness), listing.freshness
        reason = listing
    return await get_queue_page(slug, query), live(reason)


def _uncovered(query: QueueQuery) -> str:
    vhosts = tuple(settings.MQB_METRICS_RABBITMQ_VHOSTS)
    if vhosts and query.vhost not in vhosts:
        return "the collector samples only some vhosts (MQB_METRICS_RABBITMQ_VHOSTS)"
    if query.regex and query.name and _regex(query.name) is None:
        return "the pattern needs the broker's own regular expressions"
    return ""
