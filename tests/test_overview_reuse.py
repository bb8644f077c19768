"""What the overview and /api/clusters/health make once per read and reuse.

With ``MQB_HEALTH_REUSE_SECONDS`` on, the overview reads which collector leads and the
alerts of every cluster at most once per reuse time (``core.recent``); an alert or a
silence saved in this process shows on the next page at once. The health API's JSON is
made once per read of the rows, and each answer carries its own age, the same as the
page's, in the shape of the schema.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from dashboard.alerts.templatetags import alert_ui
from dashboard.core.clusters import stored_health, sync_cluster_rows
from dashboard.core.recent import Recent
from dashboard.models import Alert, Silence
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
    recent.forget()
    alert_ui.every_cluster.forget()
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
    alert_ui.every_cluster.forget()
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
