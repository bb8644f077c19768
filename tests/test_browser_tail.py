"""Debian's Chromium: the live tail of a queue and a topic page moves while the test publishes."""

from __future__ import annotations

import threading
import time
from urllib.parse import urlencode

import pytest

from tests.support.metrics import create_topic, delete_topics, produce
from tests.support.rabbitmq import bind, declare, mgmt, q, unique

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.redis]

HOSTILE = '<img src=x onerror="window.pwned=1">'


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


def keep_publishing(send, stop: threading.Event) -> threading.Thread:
    """Publish every 0.2 s until stopped: the tail shows what flows *now*."""

    def run() -> None:
        while not stop.is_set():
            send()
            stop.wait(0.2)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def start_and_wait_for_messages(page, stop: threading.Event, count: int = 3) -> None:
    page.click("[data-tail] [data-role=toggle]")
    try:
        page.wait_for_function(
            f"() => Number(document.querySelector('[data-tail]').dataset.shown) >= {count}",
            timeout=20_000,
        )
    finally:
        stop.set()


def test_a_queue_page_tails_messages_without_reload(page, daphne_url, rabbitmq_vhost):
    name = unique("browser-tail")
    declare(rabbitmq_vhost, name)
    bind(rabbitmq_vhost, "amq.topic", name, name)
    query = urlencode({"vhost": rabbitmq_vhost, "name": name})
    page.goto(f"{daphne_url}/rabbitmq/local-rabbitmq/queue?{query}")
    assert page.get_attribute("[data-tail]", "data-state") == "paused"

    def send() -> None:
        with mgmt() as http:
            http.post(
                f"/api/exchanges/{q(rabbitmq_vhost)}/amq.topic/publish",
                json={
                    "properties": {"headers": {"x-note": HOSTILE}},
                    "routing_key": name,
                    "payload": HOSTILE,
                    "payload_encoding": "string",
                },
            ).raise_for_status()

    stop = threading.Event()
    keep_publishing(send, stop)
    start_and_wait_for_messages(page, stop)
    cell = page.locator("[data-tail] tbody tr").first
    assert HOSTILE in cell.inner_text(), "broker text is shown as text"
    assert page.evaluate("window.pwned") is None, "and never run as markup"
    assert page.locator("[data-tail] tbody img").count() == 0
    assert page.get_attribute("[data-tail]", "data-state") == "running"


def test_a_topic_page_tails_records_without_reload(page, daphne_url, unique_name):
    create_topic(unique_name, partitions=2)
    try:
        page.goto(f"{daphne_url}/clusters/local-kafka/kafka/topics/{unique_name}/")
        stop = threading.Event()
        keep_publishing(lambda: produce(unique_name, 1), stop)
        start_and_wait_for_messages(page, stop)
        text = page.inner_text("[data-tail] tbody")
        assert "record 0" in text and "partition 0" in text
        page.click("[data-tail] [data-role=toggle]")  # pause
        page.wait_for_selector('[data-tail][data-state="paused"]', timeout=10_000)
    finally:
        time.sleep(0.3)
        delete_topics(unique_name)
