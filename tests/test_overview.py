"""The overview page and its JSON twin, against the real brokers.

Both show the collector's last stored check; the tests run one round of the
collector's health loop (``collect_once``) where a check is needed.
"""

from __future__ import annotations

import pytest

from brokers.base import Secret
from tests.conftest import broken, free_port
from tests.support.health import collect_once

pytestmark = [pytest.mark.django_db, pytest.mark.rabbitmq, pytest.mark.kafka]


def test_it_requires_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_api_answers_401_without_login(client):
    response = client.get("/api/clusters/health")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_before_any_check_it_says_not_checked_yet(client, viewer, use_clusters):
    client.force_login(viewer)
    page = client.get("/").content.decode()
    assert page.count('data-status="unknown">Not checked yet</span>') == 2
    assert "(no collector has reported yet)" in page
    data = client.get("/api/clusters/health").json()
    assert [c["source"] for c in data["clusters"]] == ["none", "none"]
    assert all(c["checked_at"] is None and not c["ok"] for c in data["clusters"])


def test_it_shows_both_clusters_healthy(client, viewer, use_clusters):
    collect_once()
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count('<span class="badge badge-ok" data-status="ok">Healthy</span>') == 2
    assert "Test RabbitMQ" in page and "Test Kafka" in page
    assert "unknown" not in page.split("Version")[1].split("</dd>")[0]


def test_the_api_returns_the_same_health(client, viewer, use_clusters):
    collect_once()
    client.force_login(viewer)
    data = client.get("/api/clusters/health").json()
    by_kind = {c["kind"]: c for c in data["clusters"]}
    assert by_kind["rabbitmq"]["ok"] and by_kind["kafka"]["ok"]
    assert by_kind["rabbitmq"]["overview"]["version"]
    assert by_kind["kafka"]["overview"]["topics"] is not None
    assert by_kind["rabbitmq"]["checked_at"]
    assert by_kind["rabbitmq"]["source"] == "collector"
    assert by_kind["rabbitmq"]["age_seconds"] >= 0
    assert by_kind["kafka"]["stale"] is False


@pytest.mark.parametrize(
    ("breakage", "expected"),
    [
        ("rabbitmq_down", "connection refused"),
        ("wrong_password", "wrong username or password"),
        ("wrong_management_port", "management"),
        ("kafka_down", "connection refused"),
        ("kafka_on_rabbitmq_port", "not like a Kafka broker"),
    ],
)
def test_it_explains_each_failure(
    client, viewer, use_clusters, rabbitmq_config, kafka_config, breakage, expected
):
    port = free_port()
    configs = {
        "rabbitmq_down": broken(
            rabbitmq_config,
            amqp_url=f"amqp://127.0.0.1:{port}/",
            management_url=f"http://127.0.0.1:{port}",
        ),
        "wrong_password": broken(rabbitmq_config, password=Secret("not-the-password")),
        "wrong_management_port": broken(rabbitmq_config, management_url="http://127.0.0.1:5672"),
        "kafka_down": broken(kafka_config, bootstrap_servers=f"127.0.0.1:{port}"),
        "kafka_on_rabbitmq_port": broken(kafka_config, bootstrap_servers="127.0.0.1:5672"),
    }
    use_clusters(configs[breakage])
    collect_once()
    client.force_login(viewer)
    response = client.get("/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<span class="badge badge-danger" data-status="down">Unavailable</span>' in page
    assert expected in page
    assert "not-the-password" not in page


def test_it_escapes_names_and_never_renders_secrets(client, viewer, use_clusters, rabbitmq_config):
    hostile = broken(
        rabbitmq_config, name="<script>alert(1)</script>", password=Secret("s3cr3t-pw")
    )
    use_clusters(hostile)
    collect_once()
    client.force_login(viewer)
    page = client.get("/").content.decode()
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "s3cr3t-pw" not in page
    assert "s3cr3t-pw" not in client.get("/api/clusters/health").content.decode()


def test_the_collector_records_the_check_on_the_cluster_row(use_clusters):
    from dashboard.models import Cluster

    collect_once()
    row = Cluster.objects.get(slug="test-kafka")
    assert row.status == Cluster.Status.OK
    assert row.last_checked_at is not None
    assert row.overview["cluster_name"]
