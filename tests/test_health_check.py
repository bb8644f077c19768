"""Stored health in-process: staleness, *check now* (page and API), roles, the schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dashboard.core.once import FIELD, new_key
from dashboard.models import AuditEntry, Cluster
from dashboard.openapi import build_schema
from tests.support.health import collect_once

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.rabbitmq,
    pytest.mark.kafka,
    pytest.mark.redis,
]


def by_slug(client) -> dict[str, dict[str, Any]]:
    return {c["slug"]: c for c in client.get("/api/clusters/health").json()["clusters"]}


def test_an_old_check_is_shown_stale_never_fresh(client, viewer, use_clusters, settings):
    settings.MQB_HEALTH_STALE_AFTER = 15.0
    collect_once()
    Cluster.objects.filter(slug="test-kafka").update(
        last_checked_at=datetime.now(UTC) - timedelta(minutes=5)
    )
    client.force_login(viewer)
    found = by_slug(client)
    assert found["test-kafka"]["stale"] is True
    assert found["test-kafka"]["age_seconds"] >= 300
    assert found["test-rabbitmq"]["stale"] is False
    page = client.get("/").content.decode()
    kafka = page.split('data-cluster="test-kafka"')[1].split("</article>")[0]
    rabbit = page.split('data-cluster="test-rabbitmq"')[1].split("</article>")[0]
    assert 'data-stale="true"' in kafka and "checked 5 min ago" in kafka
    assert '<span data-field="stale" class="stale">' in kafka
    assert '<span data-field="stale" class="stale" hidden>' in rabbit


def test_an_operator_checks_now_from_the_page(client, operator, use_clusters):
    client.force_login(operator)
    page = client.get("/").content.decode()
    assert 'action="/health/test-rabbitmq/check/"' in page
    response = client.post("/health/test-rabbitmq/check/", {FIELD: new_key()})
    assert response.status_code == 303
    assert response["Location"] == "/?checked=test-rabbitmq#cluster-test-rabbitmq"
    found = by_slug(client)
    assert found["test-rabbitmq"]["ok"] and found["test-rabbitmq"]["source"] == "collector"
    assert found["test-kafka"]["source"] == "none"  # only the cluster asked for was checked
    assert "Checked Test RabbitMQ just now." in client.get(response["Location"]).content.decode()
    entry = AuditEntry.objects.get(action="cluster.check")
    assert entry.user == operator and entry.target == "test-rabbitmq"


def test_the_api_checks_now_for_operators(client, operator, use_clusters):
    client.force_login(operator)
    answer = client.post("/api/clusters/test-kafka/check")
    assert answer.status_code == 200
    assert answer.json()["ok"] and answer.json()["source"] == "live"
    assert answer.json()["overview"]["topics"] is not None
    assert by_slug(client)["test-kafka"]["checked_at"] == answer.json()["checked_at"]
    assert client.post("/api/clusters/no-such-cluster/check").status_code == 404


def test_viewers_cannot_check_now(client, viewer, use_clusters):
    client.force_login(viewer)
    assert "/check/" not in client.get("/").content.decode()
    assert client.post("/api/clusters/test-kafka/check").status_code == 403
    assert client.post("/health/test-kafka/check/", {FIELD: new_key()}).status_code == 403
    assert by_slug(client)["test-kafka"]["source"] == "none"
    refused = AuditEntry.objects.filter(action="cluster.check")
    assert {e.outcome for e in refused} == {AuditEntry.Outcome.REFUSED}


def test_the_schema_documents_age_source_and_check_now():
    schema = build_schema()
    health = schema["components"]["schemas"]["ClusterHealthOut"]["properties"]
    assert health["source"]["enum"] == ["live", "collector", "none"]
    assert {"age_seconds", "stale"} <= set(health)
    assert {"type": "null"} in health["checked_at"]["anyOf"]
    check = schema["paths"]["/api/clusters/{slug}/check"]["post"]
    assert check["operationId"] == "clusterCheckNow"
    assert {200, 403, 404} <= set(check["responses"])
