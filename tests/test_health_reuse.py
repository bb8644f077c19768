"""The overview and /api/clusters/health reuse the stored checks a web process read last.

Against the real brokers (the collector's check in-process). While the kept rows are
younger than ``MQB_HEALTH_REUSE_SECONDS`` an answer reads no row and crosses no
thread, yet ages are those of the moment of the answer; a *check now* in the same
process is seen at once; 0 reads the rows for every answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync

from dashboard.core.once import FIELD, new_key
from dashboard.models import Cluster
from dashboard.overview import recent
from tests.support.health import collect_once
from tests.support.threads import recording_hops

pytestmark = pytest.mark.django_db


@pytest.fixture
def reuse(settings, use_clusters) -> Iterator[None]:
    settings.MQB_HEALTH_REUSE_SECONDS = 3600.0
    recent.forget()
    yield
    recent.forget()


def by_slug(client) -> dict[str, dict[str, Any]]:
    response = client.get("/api/clusters/health")
    assert response.status_code == 200
    return {c["slug"]: c for c in response.json()["clusters"]}


def test_it_answers_from_the_rows_it_read_with_ages_of_the_answer(client, viewer, reuse):
    collect_once()
    client.force_login(viewer)
    first = by_slug(client)["test-rabbitmq"]
    assert first["ok"] and first["source"] == "collector"
    # Another process's write (no signal here) is not read while the rows are kept.
    Cluster.objects.filter(slug="test-rabbitmq").update(
        last_checked_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    kept = by_slug(client)["test-rabbitmq"]
    assert kept["checked_at"] == first["checked_at"]
    assert kept["age_seconds"] >= first["age_seconds"]
    assert kept["stale"] is False


def test_reuse_off_reads_the_rows_every_time(client, viewer, reuse, settings):
    collect_once()
    client.force_login(viewer)
    by_slug(client)
    Cluster.objects.filter(slug="test-rabbitmq").update(
        last_checked_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    settings.MQB_HEALTH_REUSE_SECONDS = 0
    found = by_slug(client)["test-rabbitmq"]
    assert found["stale"] is True and found["age_seconds"] >= 300


def test_a_check_now_in_this_process_is_seen_at_once(client, operator, reuse):
    client.force_login(operator)
    assert by_slug(client)["test-rabbitmq"]["source"] == "none"
    response = client.post("/health/test-rabbitmq/check/", {FIELD: new_key()})
    assert response.status_code == 303
    found = by_slug(client)
    assert found["test-rabbitmq"]["ok"] and found["test-rabbitmq"]["source"] == "collector"
    page = client.get(response["Location"]).content.decode()
    assert "Checked Test RabbitMQ just now." in page


def test_a_kept_answer_reads_no_row_and_crosses_no_thread(viewer, reuse):
    collect_once()
    assert async_to_sync(recent.recent_health)()  # reads and keeps the rows
    with recording_hops() as hops:
        health = async_to_sync(recent.recent_health)()
    assert hops == []
    assert {h.slug for h in health} == {"test-rabbitmq", "test-kafka"}
    assert all(h.source == "collector" and h.ok for h in health)
