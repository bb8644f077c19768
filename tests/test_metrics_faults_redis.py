"""Fault: the dashboard's Redis is killed and restarted while a chart is open.

Daphne and the collector run on a private redis-server (the shared one is
never touched); the test kills it with SIGKILL (every key and group membership
is lost), starts it again on the same port, and watches Chromium's page: the
websocket reconnects by itself and new points arrive again, without a reload.
"""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

import pytest

from tests.settings import RUN_ID
from tests.support.metrics import (
    base_env,
    clusters_file,
    collector_process,
    declare,
    publish,
    unique,
)
from tests.support.metrics_faults import (
    PrivateRedis,
    chart,
    chromium,
    log_of,
    logged_in_page,
    served_dashboard,
    wait_chart,
)

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.redis]

INTERVAL = 2


@pytest.fixture
def private_redis(tmp_path):
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis
    redis.kill()


def test_it_reconnects_and_the_chart_continues_after_redis_is_killed(
    served_db, rabbitmq_vhost, private_redis, tmp_path
):
    slug = f"faults-redis-{RUN_ID}"
    path = clusters_file(
        tmp_path,
        f"""
[[cluster]]
slug = "{slug}"
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
        REDIS_URL=private_redis.url,
        MQB_CLUSTERS_FILE=path,
        FAULTS_RABBIT_PASSWORD="guest",
        MQB_METRICS_RABBITMQ_VHOSTS=rabbitmq_vhost,
        MQB_SAMPLE_INTERVAL=str(INTERVAL),
    )
    name = unique("redis-fault")
    declare(rabbitmq_vhost, name)
    query = urlencode({"type": "queue", "vhost": rabbitmq_vhost, "name": name})
    with (
        served_dashboard(env) as url,
        collector_process(
            env, "--only", "metrics", "--interval", str(INTERVAL), log_name="faults-redis"
        ) as collector,
        chromium() as browser,
    ):
        logs = (log_of(collector), private_redis.log)
        page = logged_in_page(browser, url)
        page.goto(f"{url}/live/{slug}/entity?{query}")
        wait_chart(page, "c.dataset.state === 'open' && c.dataset.depth === '0'", "live", 30, *logs)
        before = int(chart(page, "points"))
        wait_chart(page, f"+c.dataset.points >= {before + 2}", "points arrive", 15, *logs)

        private_redis.kill()
        killed = time.time()
        # The socket notices: its server side lost the channel layer.
        wait_chart(page, "c.dataset.state !== 'open'", "the socket noticed", 30, *logs)
        private_redis.start()
        restarted = time.time()

        publish(rabbitmq_vhost, name, 3)
        wait_chart(
            page,
            f"c.dataset.state === 'open' && c.dataset.depth === '3'"
            f" && +c.dataset.lastTime > {restarted}",
            "reconnected and new points arrive",
            60,
            *logs,
        )
        states = page.evaluate("window.mqbStates")
        after_kill = states[states.index("closed") :] if "closed" in states else []
        assert "open" in after_kill, f"the page reconnected by itself: {states}"
        points = int(chart(page, "points"))
        wait_chart(page, f"+c.dataset.points > {points}", "the chart keeps moving", 15, *logs)
        value = page.locator('[data-field="depth"] .value').inner_text()
        assert value == "3"
        assert float(chart(page, "last-time")) > killed
