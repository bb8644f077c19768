"""/metrics for Prometheus: token-protected, no session, built from the latest samples."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from brokers.base.metrics import ClusterSample, Point, queue_entity
from dashboard.metrics.redis_keys import key, sync_client
from dashboard.metrics.snapshot import encode_sample
from dashboard.models import Cluster, Consumer, DeadLetter

pytestmark = [pytest.mark.django_db, pytest.mark.redis]
TOKEN = "s3cret-token-for-tests"
AUTH = {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def store(slug: str, kind: str, points: list[Point], ok: bool = True) -> None:
    now = datetime.now(UTC)
    sample = ClusterSample(slug, kind, now, (len(points),) + (None,) * 8, tuple(points), None, 0.2)
    client = sync_client()
    client.set(key("latest", slug), encode_sample(sample, 5.0))
    status = {"cluster": slug, "ok": ok, "sampled_at": now.timestamp(), "seconds": 0.2}
    client.set(key("status", slug), json.dumps(status))


def queue(vhost: str, name: str, depth: int | None, **extra) -> Point:
    return Point(
        "queue",
        queue_entity(vhost, name),
        (depth, depth, 0, 1.5, None, 0.5, 0, None, None),
        extra or None,
    )


@pytest.fixture
def sampled(settings, redis_url):
    settings.MQB_METRICS_TOKEN = TOKEN
    rabbit = Cluster.objects.create(slug="pm-rabbit", kind="rabbitmq", name="r")
    Cluster.objects.create(slug="pm-kafka", kind="kafka", name="k")
    Cluster.objects.create(slug="pm-down", kind="rabbitmq", name="d")
    store(
        "pm-rabbit",
        "rabbitmq",
        [
            queue("/", "orders", 12),
            queue("odd/vhost", 'quo"te', None),
            queue("/", "orders.dlq", 3, dlq=True, arrival_rate=0.25),
        ],
    )
    store(
        "pm-kafka",
        "kafka",
        [
            Point("topic", "events", (100, None, None, 4.0, None, None, 2, None, None)),
            Point(
                "group",
                "billing",
                (None, None, None, 4.0, 6.0, None, 2, 40, 12.5),
                {"state": "Stable"},
            ),
        ],
    )
    store("pm-down", "rabbitmq", [queue("/", "hidden", 5)], ok=False)
    seen = datetime.now(UTC)
    DeadLetter.objects.create(cluster=rabbit, vhost="/", dlq="orders.dlq", capture_key="1")
    DeadLetter.objects.create(cluster=rabbit, vhost="/", dlq="orders.dlq", capture_key="2")
    for identity in ("a", "b"):
        Consumer.objects.create(
            cluster=rabbit, kind="amqp", identity=identity, source="%2F/orders",
            state="active", first_seen=seen, last_seen=seen,
        )  # fmt: skip
    return rabbit


def parse(response) -> dict[str, dict[tuple[Any, ...], float]]:
    found: dict[str, dict[tuple[Any, ...], float]] = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def test_it_is_off_without_a_token_setting(client, admin_user_, settings):
    settings.MQB_METRICS_TOKEN = ""
    client.force_login(admin_user_)
    assert client.get("/metrics").status_code == 404


def test_it_refuses_a_missing_or_wrong_token_even_with_a_session(client, admin_user_, sampled):
    client.force_login(admin_user_)
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 403


def test_a_scraper_with_the_token_needs_no_login(client, sampled):
    response = client.get("/metrics", **AUTH)
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    metrics = parse(response)
    orders = (("cluster", "pm-rabbit"), ("queue", "orders"), ("vhost", "/"))
    assert metrics["mqboard_queue_messages"][orders] == 12
    assert metrics["mqboard_queue_publish_rate"][orders] == 1.5
    assert orders not in metrics.get("mqboard_queue_deliver_rate", {}), "unknown is left out"
    odd = (("cluster", "pm-rabbit"), ("queue", 'quo"te'), ("vhost", "odd/vhost"))
    assert (
        odd not in metrics["mqboard_queue_messages"] and odd in metrics["mqboard_queue_consumers"]
    )
    dlq = (("cluster", "pm-rabbit"), ("dlq", "orders.dlq"), ("vhost", "/"))
    assert metrics["mqboard_dlq_messages"][dlq] == 3
    assert metrics["mqboard_dlq_arrival_rate"][dlq] == 0.25
    assert metrics["mqboard_dead_letters_captured_total"][dlq] == 2
    group = (("cluster", "pm-kafka"), ("group", "billing"))
    assert metrics["mqboard_group_lag"][group] == 40
    assert metrics["mqboard_group_lag_seconds"][group] == 12.5
    assert metrics["mqboard_group_time_to_drain_seconds"][group] == 20.0
    assert (
        metrics["mqboard_topic_produce_rate"][(("cluster", "pm-kafka"), ("topic", "events"))] == 4
    )
    assert metrics["mqboard_consumers_present"][(("cluster", "pm-rabbit"), ("kind", "amqp"))] == 2


def test_a_cluster_whose_last_sample_failed_is_down_and_shows_no_stale_numbers(client, sampled):
    metrics = parse(client.get("/metrics", **AUTH))
    assert metrics["mqboard_cluster_up"][(("cluster", "pm-down"), ("kind", "rabbitmq"))] == 0
    assert metrics["mqboard_cluster_up"][(("cluster", "pm-rabbit"), ("kind", "rabbitmq"))] == 1
    hidden = (("cluster", "pm-down"), ("queue", "hidden"), ("vhost", "/"))
    assert hidden not in metrics["mqboard_queue_messages"]


def test_it_stays_cheap_at_ten_thousand_queues(client, sampled, django_assert_max_num_queries):
    store("pm-rabbit", "rabbitmq", [queue("bench", f"q{i:05d}", i) for i in range(10_000)])
    started = time.monotonic()
    with django_assert_max_num_queries(4):
        response = client.get("/metrics", **AUTH)
    elapsed = time.monotonic() - started
    assert response.status_code == 200
    assert response.content.count(b"mqboard_queue_messages{") == 10_000
    assert elapsed < 5.0, f"{elapsed:.2f} s for 10,000 queues"
