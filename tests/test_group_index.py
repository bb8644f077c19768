"""The groups list's index over a snapshot: what it keeps between requests (rows made,
filter matches, row HTML) never changes what a page shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from django.utils.html import escape

from brokers.base.metrics import FIELDS
from dashboard.browse.kafka.groups import KEPT_FILTERS, GroupIndex
from dashboard.browse.kafka.views.rows_html import group_rows
from dashboard.metrics.snapshot import Snapshot

AS_OF = datetime(2026, 1, 1, tzinfo=UTC)


def snapshot(count: int) -> Snapshot:
    lag, consumers = FIELDS.index("lag"), FIELDS.index("consumers")
    rows, extra = [], {}
    for i in range(count):
        values: list[int | None] = [None] * len(FIELDS)
        values[lag], values[consumers] = i, i % 3
        rows.append([f"g{i:03d}-{'odd' if i % 2 else 'even'}", *values])
        extra[f"group\x1f{rows[-1][0]}"] = {
            "state": "Stable" if i % 3 else "Empty",
            "type": "classic",
            "protocol": "range",
            "topics": [f"t{i}"],
            "committed": 1,
        }
    return Snapshot("k", {}, {"entities": {"group": rows}, "extra": extra})


def pages(index: GroupIndex, needle: str, per_page: int = 7) -> list[tuple[object, ...]]:
    first = index.page(1, per_page, needle, AS_OF)
    return [
        (p.groups, p.total, p.page)
        for p in (index.page(n, per_page, needle, AS_OF) for n in range(1, first.pages + 1))
    ]


def test_kept_rows_and_matches_give_the_pages_a_fresh_index_gives():
    snap = snapshot(60)
    used = GroupIndex.build(snap)
    needles = ["", "odd", "EVEN", "g01", "nothing", *(f"g0{i}" for i in range(KEPT_FILTERS))]
    for _round in range(2):
        for needle in needles:
            assert pages(used, needle) == pages(GroupIndex.build(snap), needle), needle
    assert len(used.matched) <= KEPT_FILTERS
    assert used.page(1, 7, "odd", AS_OF).total == 30
    assert used.page(99, 7, "", AS_OF).page == 9  # past the end: the last page
    row = used.page(1, 7, "g004", AS_OF).groups[0]
    assert (row.group_id, row.lag, row.members, row.state) == ("g004-even", 4, 1, "Stable")


def test_row_html_follows_its_group_and_escapes_what_the_broker_sent():
    row = GroupIndex.build(snapshot(1)).page(1, 1, "", AS_OF).groups[0]
    hostile = replace(row, group_id="<b>\"g&1'", error="<i>x</i>", topics=("<t>",))
    html = group_rows([row, hostile, row], "/g/", "/t/")
    assert html.count(f'data-group="{row.group_id}"') == 2
    assert f'data-group="{escape(hostile.group_id)}"' in html and "<b>" not in html
    assert escape("<i>x</i>") in html and "&lt;t&gt;" in html
    assert "/t/%3Ct%3E/" in html
    lagging = group_rows([replace(row, lag=12345)], "/g/", "/t/")
    assert "12,345" in lagging
    assert lagging != group_rows([row], "/g/", "/t/")
