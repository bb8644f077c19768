"""Debian's Chromium against real Daphne and the real local Kafka: topic, browse by time, lag."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support import kafka as support

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.rabbitmq]

kit = support.kit
SLUG = "local-kafka"  # the served Daphne watches the default local clusters


def login(page: Any, daphne_url: str) -> None:
    page.goto(daphne_url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(daphne_url + "/")


def test_it_opens_a_topic_browses_from_a_time_and_shows_a_groups_lag(
    browser,
    daphne_url,
    kit,
):
    topic = kit.topic(partitions=1)
    base = int(time.time() * 1000) - 600_000
    kit.produce(
        topic,
        *(
            {
                "key": f"k{i}".encode(),
                "value": f"record-{i}".encode(),
                "timestamp": base + i * 60_000,
            }
            for i in range(6)
        ),
    )
    group = kit.commit(kit.name("-browser"), {(topic, 0): 2})
    page = browser.new_page()
    try:
        login(page, daphne_url)
        page.click("nav >> text=Kafka")
        page.click(".crumbs >> text=Topics")
        page.wait_for_selector("#topics")
        page.fill("input[name=q]", topic)
        page.click("form.filters button[type=submit]")
        page.click(f'#topics a:text-is("{topic}")')
        page.wait_for_selector("#partitions")
        assert page.locator("#partitions tbody tr").count() == 1
        assert group in page.inner_text("#readers")

        page.click("text=Browse messages")
        page.wait_for_selector("#browse-form")
        page.select_option("#start", "timestamp")
        moment = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime((base + 3 * 60_000) / 1000))
        page.fill("#timestamp", moment)
        page.click("#browse-form button[type=submit]")
        page.wait_for_selector("#records")
        offsets = page.locator("#records tr.record").evaluate_all(
            "rows => rows.map(r => Number(r.dataset.offset))"
        )
        assert offsets == [3, 4, 5]
        assert "record-3" in page.inner_text("#records")
        page.locator("#records tr.record >> nth=0 >> summary").click()
        assert (
            page.locator("#records tr.record >> nth=0 >> pre.body").nth(1).inner_text()
            == "record-3"
        )

        page.click(".crumbs >> text=Consumer groups")
        page.fill("input[name=q]", group)
        page.click("form.filters button[type=submit]")
        assert page.inner_text(f'#groups tr[data-group="{group}"] [data-field=lag]') == "4"
        page.click(f'#groups a:text-is("{group}")')
        page.wait_for_selector("#lag")
        row = page.locator(f'#lag tr[data-topic="{topic}"]')
        assert row.locator("[data-field=lag]").inner_text() == "4"
        assert page.inner_text("#total-lag") == "4"
    finally:
        page.close()
