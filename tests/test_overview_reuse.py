"""What the overview and /api/clusters/health make once per read and reuse.

With ``MQB_HEALTH_REUSE_SECONDS`` on, the overview reads which collector leads and the
alerts of every cluster at most once per reuse time (``core.recent``); an alert or a
silence saved in this process shows on the next page at once. The health API's JSON is
made once per read of the rows, and each answer carries its own age, the same as the
page's, in the shape of the schema.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from dashboard.alerts import badge
from dashboard.core import letter_counts
from dashboard.core.clusters import stored_health, sync_cluster_rows
from dashboard.core.recent import Recent
from dashboard.models import Alert, DeadLetter, Silence
from dashboard.overview import recent, views
from tests.support.alerts import make_alert
from tests.support.health import collect_once

pytestmark = pytest.mark.django_db
RABBIT = "test-rabbitmq"


@pytest.fixture
def reuse(settings, use_clusters) -> Iterator[None]:
    settings.MQB_HEALTH_REUSE_SECONDS = 3600.0
    forget_all()
    yield
    forget_all()


def forget_all() -> None:
    letter_counts.forget()
    recent.forget()
    badge.every_cluster.forget()
    views.collector_status.forget()


def firing(page: str) -> int:
    found = re.search(r'data-alerts-badge[^>]*data-firing="(\d+)"', page)
    assert found, "no alert badge on the page"
    return int(found[1])


def test_recent_reads_once_per_reuse_time_and_again_after_forget(settings):
    answers = iter(range(100))
    kept: Recent[int] = Recent(lambda: next(answers))
    settings.MQB_HEALTH_REUSE_SECONDS = 3600.0
    assert [kept.get(), kept.get()] == [0, 0]
    kept.forget()
    assert kept.get() == 1 and kept.reads == 2
    settings.MQB_HEALTH_REUSE_SECONDS = 0
    assert [kept.get(), kept.get()] == [2, 3]


def test_the_overview_badge_shows_an_alert_saved_in_this_process_at_once(client, viewer, reuse):
    client.force_login(viewer)
    assert firing(client.get("/").content.decode()) == 0
    rabbit = sync_cluster_rows()[RABBIT]
    alert = make_alert(rabbit, "%2F/reuse-a")
    assert firing(client.get("/").content.decode()) == 1

    now = timezone.now()
    Silence.objects.create(
        matchers={"entity": "*/reuse-a"}, starts_at=now, ends_at=now + timedelta(hours=1)
    )
    assert firing(client.get("/").content.decode()) == 0

    # Another process's write (no signal here) shows after the reuse time, not before.
    Silence.objects.all().delete()  # a signal: read again
    assert firing(client.get("/").content.decode()) == 1
    Alert.objects.filter(pk=alert.pk).update(state="resolved")
    assert firing(client.get("/").content.decode()) == 1
    badge.every_cluster.forget()
    assert firing(client.get("/").content.decode()) == 0


def test_the_overview_reads_which_collector_leads_once_per_reuse_time(client, viewer, reuse):
    client.force_login(viewer)
    before = views.collector_status.reads
    for _ in range(3):
        assert 'id="collector-status"' in client.get("/").content.decode()
    assert views.collector_status.reads == before + 1


def test_the_health_api_ages_each_answer_from_json_made_once(client, viewer, reuse):
    collect_once()
    client.force_login(viewer)
    answers: list[dict[str, Any]] = [
        {c["slug"]: c for c in client.get("/api/clusters/health").json()["clusters"]}
        for _ in range(2)
    ]
    first, second = (a[RABBIT] for a in answers)
    assert first["source"] == "collector" and first["ok"] is True
    assert second["age_seconds"] >= first["age_seconds"]
    assert {k: v for k, v in first.items() if k != "age_seconds"} == {
        k: v for k, v in second.items() if k != "age_seconds"
    }
    # The same fields and values as a check read and aged now, in the schema's shape.
    stored = {h.slug: h.as_json() for h in stored_health()}[RABBIT]
    assert set(second) == set(stored)
    assert {k: v for k, v in second.items() if k not in ("age_seconds", "stale")} == {
        k: v for k, v in stored.items() if k not in ("age_seconds", "stale")
    }
    response = client.get("/api/clusters/health")
    assert response["Content-Type"] == "application/json; charset=utf-8"


def test_an_answer_made_once_is_made_again_after_a_check_in_this_process(client, viewer, reuse):
    client.force_login(viewer)
    assert client.get("/api/clusters/health").json()["clusters"][0]["source"] == "none"
    collect_once()  # saves the Cluster rows here: their signal drops the kept read
    sources = {c["source"] for c in client.get("/api/clusters/health").json()["clusters"]}
    assert sources == {"collector"}


def pending_on_card(page: str, slug: str) -> str:
    card = page.split(f'id="cluster-{slug}"')[1]
    return card.split('data-field="pending_letters">')[1].split(" pending")[0].rsplit(">", 1)[1]


def test_the_overview_renders_in_the_event_loop_once_its_parts_are_kept(
    client, viewer, reuse, monkeypatch
):
    """The first view reads what is not kept (in a thread); later ones render in the event
    loop from kept parts after one read of the letters' stamp; a letter written by another
    process (no signal) changes the stamp, and the next view counts it."""
    collect_once()
    client.force_login(viewer)
    in_thread: list[str] = []
    page_in_thread = views._page

    def counted_page(*args: Any) -> Any:
        in_thread.append("page")
        return page_in_thread(*args)

    monkeypatch.setattr(views, "_page", counted_page)
    first = client.get("/").content.decode()
    assert in_thread == ["page"] and pending_on_card(first, RABBIT) == "0"
    with CaptureQueriesContext(connection) as queries:
        again = client.get("/").content.decode()
    assert in_thread == ["page"], "rendered in a thread although every part was kept"
    assert len(queries.captured_queries) == 2, queries.captured_queries  # the stamp only
    assert again.count('class="card"') == first.count('class="card"') >= 2
    assert firing(again) == firing(first)

    cluster = sync_cluster_rows()[RABBIT]
    DeadLetter.objects.bulk_create(  # no signal: as the collector's capture
        DeadLetter(cluster=cluster, dlq="orders.dlq", capture_key=f"loop-{n}", reason="rejected")
        for n in range(3)
    )
    counted = client.get("/").content.decode()
    assert in_thread == ["page", "page"] and pending_on_card(counted, RABBIT) == "3"
    assert pending_on_card(client.get("/").content.decode(), RABBIT) == "3"
    assert in_thread == ["page", "page"]


def test_stamp_reads_in_the_event_loop_are_shared_and_start_after_each_ask(reuse):
    reads: list[int] = []
    real = letter_counts.current_stamp

    def counted() -> tuple[object, ...]:
        reads.append(1)
        return real()

    async def many() -> list[tuple[object, ...]]:
        return list(await asyncio.gather(*(letter_counts.astamp() for _ in range(30))))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(letter_counts, "current_stamp", counted)
        stamps = async_to_sync(many)()
        assert len(set(stamps)) == 1 and 1 <= len(reads) <= 2
        before = stamps[0]
        cluster = sync_cluster_rows()[RABBIT]
        DeadLetter.objects.create(cluster=cluster, dlq="x.dlq", capture_key="after-ask")
        assert async_to_sync(letter_counts.astamp)() != before
