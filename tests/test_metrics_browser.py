"""Debian's Chromium: a queue chart and a topic chart move while the test publishes."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from tests.support.metrics import (
    base_env,
    collector_process,
    create_topic,
    declare,
    delete_topics,
    log_tail,
    produce,
    publish,
    unique,
)

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.redis]


@pytest.fixture(scope="module")
def collector(served_db, daphne_url):
    with collector_process(
        base_env(served_db), "--only", "metrics", "--interval", "1", log_name="browser-collector"
    ) as process:
        yield process


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


def points(page) -> int:
    return int(page.get_attribute("[data-metrics-chart]", "data-points") or 0)


def wait_attribute(page, name: str, value: str, collector, timeout: float = 30_000) -> None:
    try:
        page.wait_for_selector(f'[data-metrics-chart][{name}="{value}"]', timeout=timeout)
    except Exception as exc:
        chart = page.inner_text("[data-metrics-chart]")
        raise AssertionError(
            f"{name} never became {value}; chart: {chart}\n{log_tail(collector.log_path)}"
        ) from exc


def test_a_queue_chart_moves_while_messages_are_published(
    page, daphne_url, collector, rabbitmq_vhost
):
    name = unique("browser")
    declare(rabbitmq_vhost, name)
    query = urlencode({"type": "queue", "vhost": rabbitmq_vhost, "name": name})
    page.goto(f"{daphne_url}/live/local-rabbitmq/entity?{query}")
    assert page.inner_text("#entity-name") == name
    wait_attribute(page, "data-state", "open", collector)
    wait_attribute(page, "data-depth", "0", collector)
    before = points(page)
    publish(rabbitmq_vhost, name, 5)
    wait_attribute(page, "data-depth", "5", collector)
    publish(rabbitmq_vhost, name, 7)
    wait_attribute(page, "data-depth", "12", collector)
    assert points(page) > before, "points were appended, without reloading"
    assert page.locator("canvas").count() >= 2, "the uPlot charts are drawn"
    messages = page.locator('[data-field="depth"]')
    assert messages.locator(".value").inner_text() == "12"
    assert "as of" in page.inner_text("[data-role=as-of]"), "the numbers say how fresh they are"


def test_a_topic_chart_moves_while_records_are_produced(page, daphne_url, collector, unique_name):
    create_topic(unique_name, partitions=1)
    try:
        query = urlencode({"type": "topic", "name": unique_name})
        page.goto(f"{daphne_url}/live/local-kafka/entity?{query}")
        wait_attribute(page, "data-state", "open", collector)
        wait_attribute(page, "data-depth", "0", collector)
        before = points(page)
        produce(unique_name, 25)
        wait_attribute(page, "data-depth", "25", collector)
        produce(unique_name, 25)
        wait_attribute(page, "data-depth", "50", collector)
        assert points(page) > before
        produce_rate = page.locator('[data-field="publish_rate"] .value').inner_text()
        assert produce_rate != "unknown"
    finally:
        delete_topics(unique_name)


def test_the_cluster_page_follows_the_totals(page, daphne_url, collector):
    page.goto(f"{daphne_url}/live/local-kafka/")
    wait_attribute(page, "data-state", "open", collector)
    page.wait_for_function(
        "() => document.querySelector('[data-metrics-chart]').dataset.lag !== undefined",
        timeout=30_000,
    )
    labels = page.locator(".mqb-chart-numbers dt").all_inner_texts()
    assert "Lag" in labels and "Ack" not in labels, "Kafka's numbers, not RabbitMQ's"
    assert page.locator("canvas").count() >= 2
