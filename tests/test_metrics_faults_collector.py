"""Fault: the collector is killed (SIGKILL) while a chart is open, then started again.

The open chart and the history API (what a reload draws) both show the time
the collector was away as a gap, a null point the line breaks at, never a
line drawn across it; and the chart continues with the new collector's points.
"""

from __future__ import annotations

import time
from itertools import pairwise
from urllib.parse import quote

import pytest

from tests.settings import RUN_ID
from tests.support.metrics import base_env, clusters_file, collector_process, declare, unique
from tests.support.metrics_faults import (
    chromium,
    log_of,
    logged_in_page,
    served_dashboard,
    wait_chart,
)

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.redis]

INTERVAL = 1.0

# Points of the chart's depth series as [time, value] pairs, value null in a gap.
SERIES = """() => { const d = document.querySelector('[data-metrics-chart]').mqbChart.data;
  return d.t.map((t, i) => [t, d.depth[i]]); }"""


def gap_between(series: list[list[float | None]], start: float, end: float) -> bool:
    """Two real points around [start, end] with only nulls (at least one) between them."""
    real = [(i, t) for i, (t, v) in enumerate(series) if v is not None and t is not None]
    return any(
        j > i + 1 and t0 <= start + INTERVAL and t1 >= end - INTERVAL
        for (i, t0), (j, t1) in pairwise(real)
    )


def test_a_killed_collector_leaves_an_honest_gap_and_the_chart_continues(
    served_db, rabbitmq_vhost, tmp_path
):
    slug = f"faults-gap-{RUN_ID}"
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
        MQB_CLUSTERS_FILE=path,
        FAULTS_RABBIT_PASSWORD="guest",
        MQB_METRICS_RABBITMQ_VHOSTS=rabbitmq_vhost,
        MQB_SAMPLE_INTERVAL=str(INTERVAL),
    )
    declare(rabbitmq_vhost, unique("gap"))  # the vhost's totals are known, not null
    args = ("--only", "metrics", "--interval", str(INTERVAL))
    with served_dashboard(env) as url, chromium() as browser:
        page = logged_in_page(browser, url)
        with collector_process(env, *args, log_name="faults-gap-1") as first:
            page.goto(f"{url}/live/{slug}/")
            wait_chart(page, "c.dataset.state === 'open' && +c.dataset.points >= 3", "points", 40,
                       log_of(first))  # fmt: skip
            first.kill()  # SIGKILL: no goodbye
            first.wait(timeout=10)
            killed = time.time()
        time.sleep(5 * INTERVAL)  # away for several intervals (the gap to find)
        with collector_process(env, *args, log_name="faults-gap-2") as second:
            back = time.time()
            wait_chart(page, f"+c.dataset.lastTime > {back}", "new points", 40, log_of(second))
            points = int(page.get_attribute("[data-metrics-chart]", "data-points") or 0)
            wait_chart(page, f"+c.dataset.points >= {points + 2}", "it continues", 20,
                       log_of(second))  # fmt: skip
            live = page.evaluate(SERIES)
            assert gap_between(live, killed, back), f"the open chart breaks its line: {live}"
            history = page.evaluate(
                "async (u) => (await fetch(u, {credentials: 'same-origin'})).json()",
                f"/api/metrics/{slug}/history?type=cluster&range=1h",
            )
            stored = [[t, v] for t, v in zip(history["t"], history["depth"], strict=True)]
            assert gap_between(stored, killed, back), f"the history has the gap: {history}"
            # A reload draws the same gap from the history.
            page.reload()
            wait_chart(page, "c.dataset.state === 'open' && +c.dataset.points > 3", "reloaded", 30,
                       log_of(second))  # fmt: skip
            assert gap_between(page.evaluate(SERIES), killed, back)
