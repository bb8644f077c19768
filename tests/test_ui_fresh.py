"""Debian's Chromium: fresh numbers and one format for times and numbers on the overview,
the live metrics pages and the consumers page; charts that read well; cards that link.

A real collector samples the real brokers every second (health and metrics). Some history
is written into the served database, as the collector and the downsampler would have:
a cluster that has been monitored for 20 minutes, whose oldest hourly bucket starts 69
minutes ago, and a queue whose rate wobbles around 5/s with a backlog of 0 or 1 message.
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.metrics import (
    base_env,
    collector_process,
    declare,
    log_tail,
    publish,
    run_django,
    unique,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.redis]

LOCAL = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
UTC_TITLE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$")
SEEDED = "mqb-fresh-seeded"  # a queue with history only, never declared on the broker
DAY = 86400

SEED = """
import json, time
from datetime import UTC, datetime
from brokers.base.metrics import queue_entity
from dashboard.models import Cluster, ThroughputSample

cluster = Cluster.objects.get(slug="local-rabbitmq")
now = time.time()
entity = queue_entity(%(vhost)r, %(name)r)

def row(entity_type, name, resolution, at, **values):
    sample = ThroughputSample(cluster=cluster, entity_type=entity_type, entity=name,
                              resolution=resolution, time=datetime.fromtimestamp(at, UTC))
    for field, value in values.items():
        setattr(sample, field, value)
    return sample

rows = []
hour = now - 69 * 60
rows.append(row("cluster", "local-rabbitmq", "hour", hour, depth=10))
rows.append(row("queue", entity, "hour", hour, depth=2, publish_rate=5.0, consumers=0))
start = now - 20 * 60
for i in range(0, 60):
    at = start + i * 5
    rows.append(row("cluster", "local-rabbitmq", "raw", at, depth=10))
    rows.append(row("queue", entity, "raw", at, depth=i %% 2, ready=i %% 2, unacked=0,
                    publish_rate=(5.6 if i == 59 else 4.9 + 0.2 * (i %% 2)),
                    deliver_rate=5.0 + 0.1 * (i %% 2), consumers=0))
ThroughputSample.objects.bulk_create(rows)
print(json.dumps(len(rows)))
"""


@pytest.fixture(scope="module")
def collector(served_db, daphne_url):
    env = base_env(served_db)
    with collector_process(
        env, "--only", "metrics", "--only", "health", "--interval", "1", log_name="ui-fresh"
    ) as process:
        exists = "from dashboard.models import Cluster; import json; "
        exists += "print(json.dumps(Cluster.objects.filter(slug='local-rabbitmq').exists()))"
        wait_for(lambda: run_django(env, exists), timeout=60, what="the cluster row")
        yield process


@pytest.fixture(scope="module")
def seeded(served_db, collector, rabbitmq_vhost):
    return run_django(base_env(served_db), SEED % {"vhost": rabbitmq_vhost, "name": SEEDED})


@pytest.fixture
def page(browser, daphne_url):
    page = browser.new_page()
    page.goto(daphne_url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(daphne_url + "/")
    yield page
    page.close()


def assert_one_time_format(time_el) -> None:
    text = time_el.inner_text()
    assert LOCAL.match(text), f"local time YYYY-MM-DD HH:MM:SS, got {text!r}"
    assert UTC_TITLE.match(time_el.get_attribute("title") or ""), "UTC on hover"


# -- freshness and formats ---------------------------------------------------------------


def test_the_overview_last_check_keeps_one_format_after_live_updates(page, daphne_url, collector):
    page.goto(daphne_url + "/")
    checked = page.locator('.card[data-cluster="local-rabbitmq"] [data-field="checked_at"] time')
    assert_one_time_format(checked)
    first = checked.get_attribute("datetime")
    page.wait_for_selector('#live-state[data-state="open"]', timeout=15_000)
    try:
        wait_for(lambda: checked.get_attribute("datetime") != first, timeout=20, what="an update")
    except AssertionError as exc:
        raise AssertionError(log_tail(collector.log_path)) from exc
    assert_one_time_format(checked)
    assert re.search(r"\((just now|.+ ago)\)$", checked.inner_text()), "with its relative age"


def test_the_live_home_stays_fresh_over_a_websocket(page, daphne_url, collector):
    sockets: list[str] = []
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.goto(daphne_url + "/live/")
    card = page.locator('.card[data-cluster="local-rabbitmq"]')
    sampled = card.locator("time.when").first
    page.wait_for_function(
        "() => document.querySelector('.card[data-cluster=\"local-rabbitmq\"] time.when')",
        timeout=30_000,
    )
    first = sampled.get_attribute("datetime")
    wait_for(lambda: sampled.get_attribute("datetime") != first, timeout=20, what="a newer sample")
    assert any("/ws/metrics/cluster/" in url for url in sockets), sockets
    assert_one_time_format(sampled)
    age = card.locator("time.when").first.inner_text()
    seconds = re.search(r"\((\d+(?:\.\d+)?) s ago\)|\(just now\)", age)
    assert seconds, f"a fresh age, got {age!r}"
    assert seconds.group(1) is None or float(seconds.group(1)) < 5, age
    for field in ("publish_rate", "deliver_rate"):
        text = card.locator(f'[data-field="{field}"]').inner_text()
        assert re.fullmatch(r"\u2013|-?[\d,]+(\.\d*[1-9])?/s", text), f"one precision: {text!r}"


def test_chart_numbers_use_one_precision_and_one_time_format(
    page, daphne_url, seeded, rabbitmq_vhost
):
    query = urlencode({"type": "queue", "vhost": rabbitmq_vhost, "name": SEEDED})
    page.goto(f"{daphne_url}/live/local-rabbitmq/entity?{query}")
    rate = page.locator('[data-field="publish_rate"] .value')
    wait_for(lambda: rate.inner_text() != "unknown", timeout=15, what="the history's numbers")
    assert rate.inner_text() == "5.6/s"
    assert_one_time_format(page.locator('[data-metrics-chart] [data-role="as-of"] time'))


def test_a_group_is_never_idle_for_longer_than_it_was_watched(
    page, daphne_url, seeded, rabbitmq_vhost, collector
):
    name = unique("fresh-idle")
    declare(rabbitmq_vhost, name)
    publish(rabbitmq_vhost, name, 20)
    row = page.locator(f'#without-consumers tr[data-name="{name}"]')

    def listed() -> bool:
        page.goto(daphne_url + "/consumers/")
        return bool(row.count() == 1)

    wait_for(listed, timeout=30, what="the queue without a consumer")
    idle = row.locator("td").nth(6).inner_text()
    assert "since monitoring began" in idle, idle
    assert "1 h" not in idle and "hour" not in idle, f"longer than it was watched: {idle!r}"
    assert_one_time_format(row.locator("time.when").first)


# -- charts --------------------------------------------------------------------------------


def chart_state(page) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate(
        """() => {
          const chart = document.querySelector('[data-metrics-chart]').mqbChart;
          return chart.plots.map(p => ({
            title: p.mqbPanel.title,
            xmin: p.scales.x.min, xmax: p.scales.x.max,
            ymin: p.scales.y.min, ymax: p.scales.y.max,
            label: p.axes[1].label || '',
            splits: p.axes[1]._splits || [],
          }));
        }"""
    )
    return found


def open_seeded_chart(page, daphne_url, rabbitmq_vhost) -> None:
    query = urlencode({"type": "queue", "vhost": rabbitmq_vhost, "name": SEEDED})
    page.goto(f"{daphne_url}/live/local-rabbitmq/entity?{query}")
    page.wait_for_selector('[data-metrics-chart]:not([data-points="0"])', timeout=15_000)


def test_a_seven_day_chart_of_one_point_spans_seven_days(page, daphne_url, seeded, rabbitmq_vhost):
    open_seeded_chart(page, daphne_url, rabbitmq_vhost)
    page.click('.mqb-chart-ranges button[data-range="7d"]')
    page.wait_for_selector('[data-metrics-chart][data-points="1"]', timeout=15_000)
    now = time.time()
    for plot in chart_state(page):
        span = plot["xmax"] - plot["xmin"]
        assert 6.9 * DAY <= span <= 7.1 * DAY, plot
        assert abs(plot["xmax"] - now) < 600, plot


def test_axes_carry_units(page, daphne_url, seeded, rabbitmq_vhost):
    open_seeded_chart(page, daphne_url, rabbitmq_vhost)
    plots = chart_state(page)
    assert [p["label"] for p in plots] == ["msg", "msg/s"], plots
    titles = page.locator(".u-title").all_inner_texts()
    assert titles == ["Messages (msg)", "Rates (msg/s)"], titles


def test_a_count_axis_has_whole_ticks(page, daphne_url, seeded, rabbitmq_vhost):
    open_seeded_chart(page, daphne_url, rabbitmq_vhost)
    counts = chart_state(page)[0]["splits"]
    assert counts and all(float(v).is_integer() for v in counts), counts


def test_a_rate_axis_does_not_zoom_noise_into_cliffs(page, daphne_url, seeded, rabbitmq_vhost):
    open_seeded_chart(page, daphne_url, rabbitmq_vhost)
    rates = chart_state(page)[1]
    assert rates["ymin"] == 0, rates
    assert rates["ymax"] >= 5.6, rates


def test_the_legend_never_reads_time_dashes(page, daphne_url, seeded, rabbitmq_vhost):
    open_seeded_chart(page, daphne_url, rabbitmq_vhost)
    legend = page.locator(".u-legend").first
    time_row = legend.locator(".u-series").first
    assert not time_row.is_visible() or "--" not in time_row.inner_text()
    box = page.locator(".u-over").first.bounding_box()
    assert box
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.move(box["x"] + box["width"] * 0.52, box["y"] + box["height"] * 0.5)
    assert time_row.is_visible()
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", time_row.inner_text())


# -- links --------------------------------------------------------------------------------


def test_overview_cards_link_to_their_cluster(page, daphne_url):
    page.goto(daphne_url + "/")
    rabbit = page.locator('.card[data-cluster="local-rabbitmq"] h2 a')
    kafka = page.locator('.card[data-cluster="local-kafka"] h2 a')
    assert rabbit.get_attribute("href") == "/rabbitmq/local-rabbitmq/"
    assert kafka.get_attribute("href") == "/clusters/local-kafka/kafka/"
    kafka.click()
    page.wait_for_url(daphne_url + "/clusters/local-kafka/kafka/")
