"""Chromium on the RabbitMQ, Kafka and live-tail pages: numbers agree, actions weigh, fit a phone.

Numbers: a dash (display.NONE) only where a value is unknown, with a title saying why; a
known zero is "0" or "0/s", never "unknown/s" or "0.0/s". The purge button is a normal danger
button apart from the safe actions. Filter buttons sit next to their fields. At 390 px no page
is wider than the screen, even with 80-character names, long consumer tags and a
2,000-character message body flowing through the live tail.
"""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import amqp  # type: ignore[import-untyped]
import pytest

from dashboard.core.display import NONE
from tests.support.metrics import commit, create_topic, delete_groups, delete_topics, produce
from tests.support.rabbitmq import (
    bind,
    declare,
    declare_exchange,
    delete_queue,
    mgmt,
    odd_vhost,
    publish,
    q,
    queue_info,
    wait_for,
)

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.redis]

RMQ = "local-rabbitmq"
KAFKA = "local-kafka"
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}


def long_name(prefix: str) -> str:
    """An 80-character name made of dashed words, unique per test."""
    name = f"{prefix}-{uuid.uuid4().hex[:8]}-" + "very-long-segment-" * 5
    return (name + "x" * 80)[:80]


@pytest.fixture
def page(browser: Any, daphne_url: str) -> Iterator[Any]:
    context = browser.new_context(viewport=LAPTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(daphne_url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(daphne_url + "/")
    yield page
    context.close()


@pytest.fixture
def long_queue(rabbitmq_vhost: str) -> Iterator[str]:
    name = long_name("polish-queue")
    declare(rabbitmq_vhost, name)
    yield name
    delete_queue(rabbitmq_vhost, name)


@pytest.fixture
def long_topic() -> Iterator[str]:
    name = long_name("polish-topic").replace("-", ".")
    create_topic(name, partitions=1)
    yield name
    delete_topics(name)


def queue_url(root: str, vhost: str, name: str) -> str:
    query = urlencode({"vhost": vhost, "name": name}, quote_via=quote)
    return f"{root}/rabbitmq/{RMQ}/queue?{query}"


def reported(vhost: str, name: str, field: str = "messages_ready", value: int = 0) -> None:
    """Wait until the management API reports ``field`` of the queue (its statistics lag)."""
    wait_for(
        lambda: queue_info(vhost, name).get(field) == value or None,
        timeout=30,
        what=f"{field} = {value}",
    )


def page_width(page: Any) -> int:
    width: int = page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
    )
    return width


def dashes_without_reason(page: Any, selector: str) -> list[str]:
    """The dashes (unknown values) inside ``selector`` without a title saying why."""
    found: list[str] = page.evaluate(
        """([selector, dash]) => {
          const out = [];
          for (const root of document.querySelectorAll(selector)) {
            const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
              if (!node.data.includes(dash)) continue;
              const holder = node.parentElement.closest("[title]");
              if (!holder || !holder.title.trim()) out.push(node.parentElement.outerHTML);
            }
          }
          return out;
        }""",
        [selector, NONE],
    )
    return found


# -- numbers on one page agree ------------------------------------------------------------------


def test_queue_page_rates_are_unknown_or_formatted_and_never_disagree(
    page, daphne_url, rabbitmq_vhost, long_queue
):
    reported(rabbitmq_vhost, long_queue)
    page.goto(queue_url(daphne_url, rabbitmq_vhost, long_queue))
    text = page.inner_text("main")
    assert "unknown/s" not in text
    assert not re.search(r"\b\d+\.0/s", text), "rates go through the rate formatter"
    dl = page.locator("section.rmq-grid dl").first
    rows = dict(
        zip(
            dl.locator("dt").all_inner_texts(),
            dl.locator("dd").all_inner_texts(),
            strict=True,
        )
    )
    # A fresh queue: RabbitMQ has no message statistics for it, like the live metrics below.
    assert rows["Publish"] == NONE, rows
    assert rows["Ready"] == "0" and rows["Total"] == "0", rows
    assert dashes_without_reason(page, "section.rmq-grid") == []
    title = page.locator('dd[data-field="publish_rate"] [title]').get_attribute("title") or ""
    assert "statistics" in title.lower()


def test_a_queue_with_traffic_shows_rates_as_numbers(page, daphne_url, rabbitmq_vhost, long_queue):
    publish(rabbitmq_vhost, long_queue, "one", "two")
    reported(rabbitmq_vhost, long_queue, value=2)
    page.goto(queue_url(daphne_url, rabbitmq_vhost, long_queue))
    dl = page.locator("section.rmq-grid dl").first
    rows = dict(
        zip(dl.locator("dt").all_inner_texts(), dl.locator("dd").all_inner_texts(), strict=True)
    )
    assert rows["Publish"] == NONE or re.fullmatch(r"[\d.,]+/s", rows["Publish"]), rows
    assert rows["Ready"] == "2", rows
    assert "unknown" not in page.inner_text("section.rmq-grid")


def test_exchange_page_never_says_unknown_per_second(page, daphne_url, rabbitmq_vhost):
    name = long_name("polish-exchange")
    declare_exchange(rabbitmq_vhost, name)
    try:
        query = urlencode({"vhost": rabbitmq_vhost, "name": name}, quote_via=quote)
        page.goto(f"{daphne_url}/rabbitmq/{RMQ}/exchange?{query}")
        head = page.inner_text(".page-head")
        assert "unknown" not in head, head
        assert "Publish in" in head
        assert dashes_without_reason(page, ".page-head") == []
        page.set_viewport_size(PHONE)
        assert page_width(page) <= 390
    finally:
        with mgmt() as http:
            http.delete(f"/api/exchanges/{q(rabbitmq_vhost)}/{q(name)}")


def test_vhost_without_queues_reads_zero_not_unknown(page, daphne_url):
    with odd_vhost() as vhost:
        page.goto(f"{daphne_url}/rabbitmq/{RMQ}/vhosts")
        row = page.locator("#vhosts tbody tr", has_text=vhost.split(" ")[0])
        cells = row.locator("td").all_inner_texts()
        queues, ready, unacked, total = cells[2:6]
        assert queues == "0", cells
        assert (ready, unacked, total) == ("0", "0", "0"), cells
        assert dashes_without_reason(page, "#vhosts") == []
        page.set_viewport_size(PHONE)
        assert page_width(page) <= 390


# -- the danger button weighs like a button, apart from the safe actions -------------------------


def test_purge_button_is_a_normal_danger_button_apart_from_safe_actions(
    page, daphne_url, rabbitmq_vhost, long_queue
):
    page.goto(queue_url(daphne_url, rabbitmq_vhost, long_queue))
    button = page.locator("#purge button.btn-danger")
    box = button.bounding_box()
    form = page.locator("#purge form").bounding_box()
    assert box["width"] < 240, box
    assert box["width"] < form["width"] / 2, (box, form)
    assert page.evaluate(
        "() => !document.querySelector('#purge button').closest('.actions')"
        " && !document.querySelector('.actions .btn-danger')"
    )
    safe = page.locator(".actions .btn").last.bounding_box()
    assert box["y"] - (safe["y"] + safe["height"]) > 100, "far from the safe actions"


# -- filter buttons next to their fields --------------------------------------------------------

FILTER_GAP = """(form) => {
  const button = form.querySelector("button[type=submit]");
  const prev = button.previousElementSibling;
  const range = document.createRange();
  range.selectNodeContents(prev);
  return {gap: button.getBoundingClientRect().left - range.getBoundingClientRect().right,
          loose: [...form.querySelectorAll("label")].filter(
            (l) => !l.classList.contains("field") || !l.closest(".form-row")).length};
}"""


@pytest.mark.parametrize(
    "path",
    [
        f"/clusters/{KAFKA}/kafka/topics/",
        f"/clusters/{KAFKA}/kafka/groups/",
        f"/rabbitmq/{RMQ}/",
        f"/rabbitmq/{RMQ}/exchanges",
    ],
)
def test_filter_button_sits_next_to_its_field(page, daphne_url, path):
    page.goto(daphne_url + path)
    form = page.locator("main form[method=get]").first
    measured = form.evaluate(FILTER_GAP)
    assert 0 <= measured["gap"] <= 32, measured
    assert measured["loose"] == 0, "every filter is a .field in a .form-row"


# -- 390 px with long names, long consumer tags and a long message in the tail --------------------


def test_queue_page_with_long_names_and_running_tail_fits_a_phone(
    page, daphne_url, rabbitmq_vhost, long_queue
):
    bind(rabbitmq_vhost, "amq.topic", long_queue, long_queue)
    tag = "consumer-tag-" + "with-a-very-long-unbroken-name" * 3
    connection = amqp.Connection(
        "127.0.0.1:5672", userid="guest", password="guest", virtual_host=rabbitmq_vhost
    )
    connection.connect()
    channel = connection.channel()
    channel.basic_consume(long_queue, consumer_tag=tag, callback=lambda m: None)
    try:
        reported(rabbitmq_vhost, long_queue, "consumers", 1)
        # The queue's consumer list (from channel statistics) can lag behind its count.
        wait_for(
            lambda: (
                any(
                    c.get("consumer_tag") == tag
                    for c in queue_info(rabbitmq_vhost, long_queue).get("consumer_details") or ()
                )
                or None
            ),
            timeout=30,
            what="the consumer in the queue's consumer details",
        )
        page.set_viewport_size(PHONE)
        page.goto(queue_url(daphne_url, rabbitmq_vhost, long_queue))
        assert tag in page.inner_text("#consumers")
        assert page_width(page) <= 390
        body = "B" * 2000

        def send() -> None:
            with mgmt() as http:
                http.post(
                    f"/api/exchanges/{q(rabbitmq_vhost)}/amq.topic/publish",
                    json={
                        "properties": {"headers": {"x-long": "H" * 300}},
                        "routing_key": long_queue,
                        "payload": body,
                        "payload_encoding": "string",
                    },
                ).raise_for_status()

        stop = threading.Event()

        def run() -> None:
            while not stop.is_set():
                send()
                stop.wait(0.3)

        page.click("[data-tail] [data-role=toggle]")
        page.wait_for_selector('[data-tail][data-state="running"]', timeout=20_000)
        threading.Thread(target=run, daemon=True).start()
        try:
            page.wait_for_function(
                "() => Number(document.querySelector('[data-tail]').dataset.shown) >= 2",
                timeout=20_000,
            )
        finally:
            stop.set()
        assert "B" * 500 in page.inner_text("[data-tail] tbody")
        assert page_width(page) <= 390
        scroller = page.locator("[data-tail] [data-role=scroller]").bounding_box()
        assert scroller["x"] + scroller["width"] <= 390
        cell = page.locator("[data-tail] tbody tr td:nth-child(3)").first.bounding_box()
        assert cell["width"] <= 390, "the body wraps inside its cell"
    finally:
        channel.close()
        connection.close()


def test_kafka_topic_and_group_with_long_names_fit_a_phone(page, daphne_url, long_topic):
    group = "polish-group-" + uuid.uuid4().hex[:8] + "-" + "consumer-group-segment-" * 3
    produce(long_topic, 3)
    commit(group, {(long_topic, 0): 2})
    try:
        page.set_viewport_size(PHONE)
        page.goto(f"{daphne_url}/clusters/{KAFKA}/kafka/topics/{long_topic}/")
        assert page_width(page) <= 390
        page.goto(f"{daphne_url}/clusters/{KAFKA}/kafka/groups/{quote(group, safe='')}")
        assert long_topic in page.inner_text("main")
        assert page_width(page) <= 390
    finally:
        delete_groups(group)


def test_topic_tail_with_a_long_record_fits_a_phone(page, daphne_url, long_topic):
    from confluent_kafka import Producer

    from tests.conftest import KAFKA as BOOTSTRAP

    page.set_viewport_size(PHONE)
    page.goto(f"{daphne_url}/clusters/{KAFKA}/kafka/topics/{long_topic}/")
    page.click("[data-tail] [data-role=toggle]")
    page.wait_for_selector('[data-tail][data-state="running"]', timeout=20_000)
    stop = threading.Event()

    def run() -> None:
        producer = Producer({"bootstrap.servers": BOOTSTRAP})
        while not stop.is_set():
            producer.produce(long_topic, key=b"K" * 200, value=b"V" * 2000)
            producer.flush(5)
            stop.wait(0.3)

    threading.Thread(target=run, daemon=True).start()
    try:
        page.wait_for_function(
            "() => Number(document.querySelector('[data-tail]').dataset.shown) >= 2",
            timeout=20_000,
        )
    finally:
        stop.set()
    assert page_width(page) <= 390
