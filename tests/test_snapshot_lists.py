"""The queue list served from a real collector's snapshot: what RabbitMQ has, with its
age; Refresh now reads RabbitMQ; a missing or stale snapshot falls back to a live read
and says so; filters, sorts and pages over the snapshot match the live ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest
from asgiref.sync import sync_to_async

from dashboard.core import context_processors
from dashboard.metrics import snapshot_lists
from dashboard.metrics.snapshot import write_status
from tests.support.rabbitmq import declare, delete_queue, publish, unique
from tests.support.snapshot_lists import (
    INTERVAL,
    RABBIT_SLUG,
    api,
    rabbit_config,
    run_collector,
    until,
)

pytestmark = [pytest.mark.django_db, pytest.mark.rabbitmq, pytest.mark.redis]

QUEUES = f"/api/clusters/{RABBIT_SLUG}/rabbitmq/queues"
PAGE = f"/rabbitmq/{RABBIT_SLUG}/"


@pytest.fixture(scope="module")
def collector(served_db, rabbitmq_vhost, redis_url, tmp_path_factory):
    yield from run_collector(served_db, rabbitmq_vhost, tmp_path_factory.mktemp("snap-r"))


@pytest.fixture
def rabbit(use_clusters, settings, rabbitmq_vhost):
    use_clusters(rabbit_config(rabbitmq_vhost))
    settings.MQB_METRICS_RABBITMQ_VHOSTS = [rabbitmq_vhost]
    snapshot_lists.forget()
    return rabbitmq_vhost


def four_queues(vhost: str) -> Iterator[tuple[str, list[str]]]:
    """Four queues of one prefix, depths 3, 1, 4, 2; two with a dead-letter exchange."""
    prefix = unique("snap")
    names = [f"{prefix}-{c}" for c in "abcd"]
    for name, depth in zip(names, (3, 1, 4, 2), strict=True):
        dlx = {"x-dead-letter-exchange": "snap-dlx"} if depth % 2 else None
        declare(vhost, name, dlx)
        publish(vhost, name, *(f"m{i}" for i in range(depth)))
    yield prefix, names
    for name in names:
        delete_queue(vhost, name)


@pytest.fixture
def queues(rabbitmq_vhost):
    """Four queues of a test's own, which it may change."""
    yield from four_queues(rabbitmq_vhost)


@pytest.fixture(scope="module")
def read_only_queues(rabbitmq_vhost):
    """Four queues the tests that only read share: the collector samples them once."""
    yield from four_queues(rabbitmq_vhost)


def depths(data: dict[str, Any]) -> dict[str, int | None]:
    return {row["name"]: row["messages"] for row in data["items"]}


def sampled(client, vhost: str, prefix: str, process) -> dict[str, Any]:
    """The snapshot page of ``prefix`` once the collector has seen every depth."""
    return until(
        lambda: api(client, QUEUES, vhost=vhost, name=prefix),
        lambda d: (
            d["source"] == "snapshot"
            and sorted(v for v in depths(d).values() if v is not None) == [1, 2, 3, 4]
        ),
        process,
    )


def test_a_snapshot_list_shows_what_the_broker_has_with_its_age(
    client, viewer, rabbit, collector, queues, monkeypatch
):
    prefix, names = queues
    client.force_login(viewer)
    data = sampled(client, rabbit, prefix, collector)
    assert depths(data) == dict(zip(names, (3, 1, 4, 2), strict=True))
    age = time.time() - datetime.fromisoformat(data["as_of"]).timestamp()
    assert 0 <= age <= 3 * INTERVAL + 15
    assert data["fetched_at"] == data["as_of"] and data["live_reason"] == ""
    rows = {row["name"]: row for row in data["items"]}
    assert rows[names[0]]["dead_letter_exchange"] == "snap-dlx"
    assert rows[names[0]]["dlx_source"] == "argument"
    assert rows[names[1]]["dead_letter_exchange"] == "snap-dlx"
    assert rows[names[2]]["dead_letter_exchange"] is None
    assert {(r["type"], r["state"], r["consumers"]) for r in rows.values()} == {
        ("classic", "running", 0)
    }
    in_thread: list[object] = []

    def to_thread(function: Any) -> Any:
        in_thread.append(function)
        return sync_to_async(function)

    # Rendered in the event loop (the role kept with the cached user): a query there would
    # fail the request.
    monkeypatch.setattr(context_processors, "sync_to_async", to_thread)
    html = client.get(PAGE, {"vhost": rabbit, "name": prefix}).content.decode()
    assert in_thread == []
    assert 'data-source="snapshot"' in html and "collector's sample" in html
    assert 'id="refresh-now"' in html and "live=1" in html
    for name in names:
        assert name in html


def test_refresh_now_shows_a_queue_created_after_the_snapshot(
    client, viewer, rabbit, collector, queues
):
    prefix, _ = queues
    client.force_login(viewer)
    sampled(client, rabbit, prefix, collector)
    for _attempt in range(5):
        before = api(client, QUEUES, vhost=rabbit, name=prefix)
        late = f"{prefix}-late-{_attempt}"
        declare(rabbit, late)
        after = api(client, QUEUES, vhost=rabbit, name=prefix)
        if after["as_of"] == before["as_of"]:
            break  # no sample in between: the snapshot predates the queue
    else:
        raise AssertionError("a sample came between every declare and read")
    try:
        assert after["source"] == "snapshot" and late not in depths(after)
        fresh = api(client, QUEUES, vhost=rabbit, name=prefix, live="1")
        assert fresh["source"] == "live" and fresh["live_reason"] == "asked for a live read"
        assert late in depths(fresh)
        html = client.get(PAGE, {"vhost": rabbit, "name": prefix, "live": "1"}).content.decode()
        assert late in html and 'data-source="live"' in html and 'id="live-note"' in html
    finally:
        for n in range(_attempt + 1):
            delete_queue(rabbit, f"{prefix}-late-{n}")


def test_the_page_shows_the_next_samples_numbers_for_the_same_query(
    client, viewer, rabbit, collector, queues
):
    """The table is rendered once per sample and query (CACHES["fragments"]): a newer
    sample shows its numbers, and another query on the same sample its own rows."""
    prefix, names = queues
    client.force_login(viewer)
    sampled(client, rabbit, prefix, collector)
    query = {"vhost": rabbit, "name": prefix, "sort": "name"}

    def cells() -> list[str]:
        html = client.get(PAGE, query).content.decode()
        table = html[html.index('id="queue-table"') : html.index("</table>")]
        return [
            row.split('<td class="num">')[3].split("<")[0]
            for row in table.split("<tr>")[2:]
            if '<td class="num">' in row
        ]

    assert cells() == ["3", "1", "4", "2"]
    publish(rabbit, names[1], *(f"more{i}" for i in range(5)))
    until(lambda: {"totals": cells()}, lambda d: d["totals"] == ["3", "6", "4", "2"], collector)
    only = client.get(PAGE, {**query, "name": names[2]}).content.decode()
    table = only[only.index('id="queue-table"') : only.index("</table>")]
    assert names[2] in table and names[1] not in table


def test_a_missing_or_stale_snapshot_falls_back_to_live_and_says_so(
    client, viewer, rabbit, collector, queues, use_clusters
):
    prefix, names = queues
    client.force_login(viewer)
    sampled(client, rabbit, prefix, collector)
    # A vhost the collector does not sample: read live.
    data = api(client, QUEUES, name=prefix)
    assert data["source"] == "live" and "only some vhosts" in data["live_reason"]
    assert set(depths(data)) == set(names)
    # A cluster the collector never sampled.
    stale_slug = f"{RABBIT_SLUG}-stale"
    use_clusters(rabbit_config(rabbit), replace(rabbit_config(rabbit), slug=stale_slug))
    path = f"/api/clusters/{stale_slug}/rabbitmq/queues"
    data = api(client, path, vhost=rabbit, name=prefix)
    assert data["source"] == "live" and "has not sampled" in data["live_reason"]
    assert set(depths(data)) == set(names)
    # A collector that stopped long ago: its last status says when it sampled.
    old = time.time() - 600
    asyncio.run(
        write_status(stale_slug, {"ok": True, "sampled_at": old, "checked_at": old, "interval": 3})
    )
    data = api(client, path, vhost=rabbit, name=prefix)
    assert data["source"] == "live" and "last sample is 6" in data["live_reason"]
    html = client.get(
        f"/rabbitmq/{stale_slug}/", {"vhost": rabbit, "name": prefix}
    ).content.decode()
    assert 'id="live-note"' in html and "last sample is 6" in html


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"sort": "depth", "reverse": "1"},
        {"sort": "depth"},
        {"sort": "ready", "reverse": "1", "page": "2"},
        {"sort": "name", "reverse": "1", "page": "2"},
        {"dlx": "yes", "sort": "depth"},
        {"dlx": "no"},
        {"type": "quorum"},
        {"page": "3"},
        {"regex": "1", "sort": "depth"},
    ],
)
def test_filters_sorts_and_pages_over_the_snapshot_match_the_live_ones(
    client, viewer, rabbit, collector, read_only_queues, params
):
    prefix, _ = read_only_queues
    client.force_login(viewer)
    sampled(client, rabbit, prefix, collector)
    wanted = {"vhost": rabbit, "name": prefix, "page_size": "2", **params}
    snap = api(client, QUEUES, **wanted)
    live = api(client, QUEUES, **wanted, live="1")
    assert (snap["source"], live["source"]) == ("snapshot", "live")
    assert [r["name"] for r in snap["items"]] == [r["name"] for r in live["items"]]
    assert depths(snap) == depths(live)
    for key in ("total", "filtered", "page_count", "has_next"):
        assert snap[key] == live[key], key
    # RabbitMQ answers a page past the end of a name-filtered list with an empty page;
    # the snapshot says it is past the end, as it does without a filter.
    assert snap["past_end"] == (not snap["items"] and snap["filtered"] > 0)


def test_a_pattern_re2_cannot_run_is_left_to_the_broker(
    client, viewer, rabbit, collector, read_only_queues
):
    prefix, _ = read_only_queues
    client.force_login(viewer)
    sampled(client, rabbit, prefix, collector)
    plain = api(client, QUEUES, vhost=rabbit, name=f"^{prefix}", regex="1")
    assert plain["source"] == "snapshot" and plain["filtered"] > 0
    lookahead = api(client, QUEUES, vhost=rabbit, name=f"^(?={prefix})", regex="1")
    assert lookahead["source"] == "live" and "regular expressions" in lookahead["live_reason"]
    assert [r["name"] for r in lookahead["items"]] == [r["name"] for r in plain["items"]]


def test_viewers_may_read_both_and_strangers_neither(
    client, viewer, rabbit, collector, read_only_queues
):
    prefix, _ = read_only_queues
    assert client.get(QUEUES, {"vhost": rabbit}).status_code in (401, 403)
    assert client.get(PAGE, {"vhost": rabbit}).status_code == 302
    client.force_login(viewer)
    sampled(client, rabbit, prefix, collector)
    for live in ("", "1"):
        assert client.get(PAGE, {"vhost": rabbit, "live": live}).status_code == 200
        assert api(client, QUEUES, vhost=rabbit, live=live)["source"] == (
            "live" if live else "snapshot"
        )
