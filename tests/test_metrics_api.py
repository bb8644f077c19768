"""The history API: login, parameters, the right tier, columnar JSON for uPlot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from brokers.base.metrics import ClusterSample, Point, queue_entity
from dashboard.metrics.store import SampleWriter
from dashboard.models import Cluster

pytestmark = pytest.mark.django_db

URL = "/api/metrics/c/history"


@pytest.fixture
def samples():
    cluster = Cluster.objects.create(slug="c", kind="rabbitmq", name="c")
    writer = SampleWriter(cluster.pk, "c")
    now = datetime.now(UTC)
    entity = queue_entity("odd/vhost", "orders & co")
    for i in range(5):
        point = Point("queue", entity, (i, i, 0, 2.0, 1.0, 1.0, 1, None, None))
        at = now - timedelta(seconds=25 - 5 * i)
        writer.write(ClusterSample("c", "rabbitmq", at, (i,) + (None,) * 8, (point,), None, 0))
    return cluster


def test_it_needs_a_login(client, samples):
    response = client.get(URL, {"type": "queue", "vhost": "odd/vhost", "name": "orders & co"})
    assert response.status_code == 401
    assert response.json()["code"] == "unauthenticated"


def test_it_returns_columns_for_a_queue_with_an_odd_vhost(client, viewer, samples):
    client.force_login(viewer)
    response = client.get(
        URL, {"type": "queue", "vhost": "odd/vhost", "name": "orders & co", "range": "1h"}
    )
    assert response.status_code == 200
    data = response.json()
    assert data["resolution"] == "raw" and data["range"] == "1h"
    assert data["depth"] == [0, 1, 2, 3, 4]
    assert len(data["t"]) == 5 and data["t"] == sorted(data["t"])
    assert data["lag"] == [None] * 5, "unknown stays unknown"
    assert data["fields"][0] == "depth"


def test_longer_ranges_read_the_downsampled_tiers(client, viewer, samples):
    client.force_login(viewer)
    assert client.get(URL, {"range": "24h"}).json()["resolution"] == "minute"
    assert client.get(URL, {"range": "7d"}).json()["resolution"] == "hour"
    assert client.get(URL).json()["entity_type"] == "cluster"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"type": "queue", "name": "x"}, 400),
        ({"type": "topic"}, 400),
        ({"type": "exchange", "name": "x"}, 400),
        ({"range": "30d"}, 400),
    ],
)
def test_it_refuses_incomplete_requests(client, viewer, samples, params, status):
    client.force_login(viewer)
    response = client.get(URL, params)
    assert response.status_code == status
    assert response.json()["code"] == "invalid"


def test_an_unknown_cluster_is_404(client, viewer, samples):
    client.force_login(viewer)
    response = client.get("/api/metrics/nope/history")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
