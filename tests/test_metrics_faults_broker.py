"""Fault: a broker restarted while its page is open in Chromium.

A private one-node Kafka (``ops/kafka.sh`` on free ports, its own state
dir; the shared Kafka is never stopped) and the shared RabbitMQ are configured
as two clusters. The Kafka is stopped while its page is open: the page says
"unavailable since ..." within two sample intervals, the RabbitMQ page keeps
getting samples meanwhile, and after the Kafka is started again the page
recovers by itself.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from tests.settings import RUN_ID
from tests.support.metrics import base_env, clusters_file, collector_process
from tests.support.metrics_faults import (
    PrivateKafka,
    chart,
    chromium,
    log_of,
    logged_in_page,
    served_dashboard,
    wait_chart,
)

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.redis]

INTERVAL = 3.0
KAFKA_TIMEOUT = 2


@pytest.fixture
def private_kafka(tmp_path):
    kafka = PrivateKafka(tmp_path / "kafka-state")
    kafka.up()
    yield kafka
    kafka.down()


def test_a_stopped_broker_is_unavailable_on_its_page_and_recovers_by_itself(
    served_db, rabbitmq_vhost, private_kafka, tmp_path
):
    kafka_slug, rabbit_slug = f"faults-pk-{RUN_ID}", f"faults-rb-{RUN_ID}"
    path = clusters_file(
        tmp_path,
        f"""
[[cluster]]
slug = "{kafka_slug}"
kind = "kafka"
bootstrap_servers = "{private_kafka.bootstrap}"
timeout = {KAFKA_TIMEOUT}

[[cluster]]
slug = "{rabbit_slug}"
kind = "rabbitmq"
amqp_url = "amqp://127.0.0.1:5672/{quote(rabbitmq_vhost, safe="")}"
management_url = "http://127.0.0.1:15672"
username = "guest"
password_env = "FAULTS_RABBIT_PASSWORD"
timeout = 4
""",
    )
    env = base_env(
        served_db,
        MQB_CLUSTERS_FILE=path,
        FAULTS_RABBIT_PASSWORD="guest",
        MQB_METRICS_RABBITMQ_VHOSTS=rabbitmq_vhost,
        MQB_SAMPLE_INTERVAL=str(INTERVAL),
    )
    with (
        served_dashboard(env) as url,
        collector_process(
            env, "--only", "metrics", "--interval", str(INTERVAL), log_name="faults-broker"
        ) as collector,
        chromium() as browser,
    ):
        logs = (log_of(collector), private_kafka.log)
        kafka_page = logged_in_page(browser, url)
        kafka_page.goto(f"{url}/live/{kafka_slug}/")
        rabbit_page = kafka_page.context.new_page()  # same context: same session
        rabbit_page.goto(f"{url}/live/{rabbit_slug}/")
        for page in (kafka_page, rabbit_page):
            wait_chart(
                page, "c.dataset.state === 'open' && +c.dataset.points > 0", "live", 40, *logs
            )
        wait_chart(kafka_page, "c.dataset.status === 'ok'", "the Kafka sampled", 20, *logs)

        private_kafka.down()
        stopped = time.monotonic()
        rabbit_before = float(chart(rabbit_page, "last-time"))
        wait_chart(kafka_page, "c.dataset.status === 'down'", "unavailable", 4 * INTERVAL, *logs)
        noticed = time.monotonic() - stopped
        assert noticed <= 2 * INTERVAL + 1.5, f"noticed after {noticed:.1f} s"
        status = kafka_page.inner_text('[data-role="status"]')
        assert "unavailable since" in status, status
        assert "last known" in status, "the numbers shown are said to be old"
        # The other cluster keeps being sampled on its own schedule meanwhile.
        wait_chart(
            rabbit_page,
            f"+c.dataset.lastTime >= {rabbit_before + 1.5 * INTERVAL}",
            "the RabbitMQ page kept moving while the Kafka was down",
            4 * INTERVAL,
            *logs,
        )
        assert chart(rabbit_page, "status") == "ok"

        private_kafka.up()
        started = time.time()
        wait_chart(
            kafka_page,
            f"c.dataset.status === 'ok' && +c.dataset.lastTime > {started}",
            "recovered by itself, with new points",
            60,
            *logs,
        )
        assert kafka_page.locator('[data-role="status"]').is_hidden()
        assert chart(kafka_page, "state") == "open", "the page was never reloaded"
