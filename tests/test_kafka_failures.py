"""Kafka pages when the broker is gone or refuses us: a clear answer in time, never a 500."""

from __future__ import annotations

import time
from types import MappingProxyType

import pytest

from brokers.base import Secret
from tests.conftest import broken, free_port
from tests.support import kafka as support
from tests.support.kafka import SLUG

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]

# Shared fixtures (see tests/support/kafka.py).
kit = support.kit

PAGES = [
    "/clusters/{slug}/kafka/",
    "/clusters/{slug}/kafka/topics/",
    "/clusters/{slug}/kafka/topics/{topic}/",
    "/clusters/{slug}/kafka/topics/{topic}/messages/",
    "/clusters/{slug}/kafka/groups/",
    "/clusters/{slug}/kafka/groups/some-group",
    "/api/clusters/{slug}/kafka/topics",
    "/api/clusters/{slug}/kafka/topics/{topic}/messages",
    "/api/clusters/{slug}/kafka/groups",
]


def test_a_broker_that_goes_down_while_a_page_is_open(
    client, viewer, use_clusters, kafka_config, kit
):
    topic = kit.topic()
    use_clusters(kafka_config)
    client.force_login(viewer)
    assert client.get(f"/clusters/{SLUG}/kafka/topics/{topic}/").status_code == 200
    # The same cluster, now answering nowhere (as when the broker dies).
    use_clusters(broken(kafka_config, bootstrap_servers=f"127.0.0.1:{free_port()}"))
    for template in PAGES:
        path = template.format(slug=SLUG, topic=topic)
        started = time.monotonic()
        response = client.get(path)
        elapsed = time.monotonic() - started
        assert response.status_code == 503, path
        assert "connection refused" in response.content.decode(), path
        assert elapsed < kafka_config.timeout + 2, f"{path} took {elapsed:.1f} s"
    api = client.get(f"/api/clusters/{SLUG}/kafka/topics").json()
    assert api["code"] == "unavailable"


def test_writes_to_a_down_broker_fail_clearly_and_are_audited(
    client, admin_user_, use_clusters, kafka_config
):
    from dashboard.models import AuditEntry

    use_clusters(broken(kafka_config, bootstrap_servers=f"127.0.0.1:{free_port()}"))
    client.force_login(admin_user_)
    response = client.post(
        f"/api/clusters/{SLUG}/kafka/topics/t/messages", {"value": "x"}, "application/json"
    )
    assert response.status_code == 503 and "connection refused" in response.json()["error"]
    assert AuditEntry.objects.get(action="kafka.produce").outcome == "failed"


def test_an_unsupported_sasl_setting_is_a_clear_error_not_a_hang(
    client, viewer, use_clusters, kafka_config
):
    sasl = broken(
        kafka_config,
        client_options=MappingProxyType(
            {
                "security.protocol": "SASL_PLAINTEXT",
                "sasl.mechanism": "SCRAM-SHA-512",
                "sasl.username": "monitor",
            }
        ),
        secret_options={"sasl.password": Secret("sasl-secret-pw")},
    )
    use_clusters(sasl)
    client.force_login(viewer)
    for path in (f"/clusters/{SLUG}/kafka/topics/", f"/api/clusters/{SLUG}/kafka/groups"):
        started = time.monotonic()
        response = client.get(path)
        assert time.monotonic() - started < kafka_config.timeout + 2
        body = response.content.decode()
        assert response.status_code == 502, path
        assert "SASL" in body and "authentication" in body
        assert "sasl-secret-pw" not in body


def test_a_port_that_is_not_kafka_is_named_as_such(client, viewer, use_clusters, kafka_config):
    use_clusters(broken(kafka_config, bootstrap_servers="127.0.0.1:5672"))
    client.force_login(viewer)
    response = client.get(f"/clusters/{SLUG}/kafka/topics/")
    assert response.status_code == 502
    assert "not like a Kafka broker" in response.content.decode()
