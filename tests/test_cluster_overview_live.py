"""The open overview names under-replicated partitions live while a Kafka broker is down.

A real Daphne and collector watch the clustered brokers of ``ops/cluster.sh``
(shared by the cluster test modules); a browser keeps the overview open. A
Kafka broker killed with SIGKILL makes the Kafka card's *Needs attention* say
how many partitions are under-replicated, with links to their topics, without
a reload (the collector's check pushed over the websocket); started again, the
card says nothing needs attention.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import PYTHON, ROOT, free_port, stop_process, wait_for_port
from tests.settings import RUN_ID
from tests.support import cluster as support
from tests.support.cluster import AMQP_URLS, BOOTSTRAP, KAFKA_SLUG, MANAGEMENT_URLS, RABBIT_SLUG
from tests.support.letter_page import login
from tests.support.metrics import collector_process
from tests.support.served_db import postgres_database, served_env

pytestmark = [pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.redis, pytest.mark.browser]
pytestmark.append(pytest.mark.timeout(600))

clustered_brokers = support.clustered_brokers
cluster_session = support.cluster_session

ATTENTION = f'.card[data-cluster="{KAFKA_SLUG}"] [data-field="attention"]'


@pytest.fixture(scope="module")
def served(clustered_brokers, redis_url, tmp_path_factory) -> Iterator[str]:
    """Daphne and a collector (2 s interval) watching the clustered brokers: Daphne's URL."""
    clusters = tmp_path_factory.mktemp("cluster-live") / "clusters.toml"
    clusters.write_text(
        "[[cluster]]\n"
        f'slug = "{RABBIT_SLUG}"\n'
        'kind = "rabbitmq"\n'
        'name = "Clustered RabbitMQ"\n'
        f"amqp_url = {json.dumps(list(AMQP_URLS))}\n"
        f"management_url = {json.dumps(list(MANAGEMENT_URLS))}\n"
        'username = "guest"\n'
        'password_env = "MQB_TEST_HEALTH_PASSWORD"\n'
        "timeout = 4.0\n"
        "[[cluster]]\n"
        f'slug = "{KAFKA_SLUG}"\n'
        'kind = "kafka"\n'
        'name = "Clustered Kafka"\n'
        f'bootstrap_servers = "{BOOTSTRAP}"\n'
        "timeout = 4.0\n"
    )
    env = served_env(
        postgres_database("cluster-live"),
        MQB_CLUSTERS_FILE=str(clusters),
        MQB_TEST_HEALTH_PASSWORD="guest",
    )
    port = free_port()
    log = open(ROOT / "var" / "log" / f"test-daphne-cluster-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        with collector_process(env, "--interval", "2", log_name="collector-cluster"):
            yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(process)
        log.close()
        support.start_every_node()


def attention_text(page: Any) -> str:
    return str(page.locator(ATTENTION).inner_text())


def test_the_open_overview_names_under_replicated_partitions_until_the_broker_returns(
    served, browser
):
    topic = f"cl-{uuid.uuid4().hex[:8]}"
    support.create_topic(topic)
    page, native = login(browser, served)
    page.wait_for_function(
        "() => document.getElementById('live-state').dataset.state === 'open'", timeout=30_000
    )
    page.wait_for_function(
        f"() => document.querySelector('{ATTENTION}').textContent === 'nothing'", timeout=60_000
    )
    support.stop_node("kafka", 3, kill=True)
    try:
        page.wait_for_function(
            f"() => document.querySelector('{ATTENTION}').textContent"
            ".includes('under-replicated partition')",
            timeout=90_000,
        )
        entry = page.locator(ATTENTION)
        assert "offline" not in attention_text(page)
        links = entry.locator("a")
        assert links.count() >= 1
        href = links.first.get_attribute("href") or ""
        assert href.startswith(f"/clusters/{KAFKA_SLUG}/kafka/topics/")
        # The link leads to a topic page that shows its under-replicated partitions.
        with page.expect_navigation():
            links.first.click()
        badges = page.locator("#partitions .badge", has_text="Under-replicated")
        assert badges.count() >= 1
        page.go_back()
    finally:
        support.start_node("kafka", 3)
    page.wait_for_function(
        f"() => document.querySelector('{ATTENTION}').textContent === 'nothing'", timeout=120_000
    )
    assert native == []
    page.close()
