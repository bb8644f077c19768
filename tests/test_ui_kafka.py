"""The Kafka pages in Chromium against real Daphne and the real local Kafka.

Writes happen once: Back, Reload and a double submit never produce, purge or reset
again (counted in the real topic and group). Reset offsets shows what each role may
do, once. The nav lands on the cluster page; the message browser keeps its
partition checkboxes and never offers to continue a finished search.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, TopicPartition

from tests.conftest import KAFKA, PYTHON, ROOT
from tests.support import kafka as support

pytestmark = [pytest.mark.browser, pytest.mark.kafka, pytest.mark.rabbitmq]

kit = support.kit
SLUG = "local-kafka"  # the served Daphne watches the default local clusters
PASSWORD = "browser-pass-1"
ADMIN = "ada-ui"


@pytest.fixture(scope="module")
def admin_login(served_db: dict[str, str]) -> str:
    """An admin in the served database (the session's demo user is an operator)."""
    subprocess.run(
        [PYTHON, "manage.py", "ensure_user", ADMIN, "--role", "admin"],
        cwd=ROOT,
        env=served_db,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return ADMIN


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    page = browser.new_page()
    page.set_default_timeout(10_000)
    try:
        yield page
    finally:
        page.close()


def login(page: Any, daphne_url: str, username: str = "olga") -> None:
    page.goto(daphne_url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(daphne_url + "/")


def watermarks(topic: str, partition: int = 0) -> tuple[int, int]:
    """(low, high) of a partition, read from the broker."""
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": "mqb-test-watermarks"})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        return int(low), int(high)
    finally:
        consumer.close()


def committed(group: str, topic: str, partition: int = 0) -> int:
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": group})
    try:
        (tp,) = consumer.committed([TopicPartition(topic, partition)], timeout=10)
        return int(tp.offset)
    finally:
        consumer.close()


def submit_with(page: Any, selector: str) -> None:
    """Submit the form of the button ``selector`` as that button would, without the
    confirmation step (not what these tests are about), and wait for the page."""
    with page.expect_navigation():
        page.locator(selector).evaluate(
            """b => {
                const extra = document.createElement("input");
                extra.type = "hidden"; extra.name = b.name; extra.value = b.value;
                if (b.name) b.form.appendChild(extra);
                b.form.submit();
            }"""
        )


def form_fields(page: Any, selector: str) -> dict[str, str]:
    """The fields a form would post (with its hidden idempotency key)."""
    fields: dict[str, str] = page.locator(selector).evaluate(
        "f => Object.fromEntries(Array.from(new FormData(f).entries()))"
    )
    return fields


def post_twice(page: Any, url: str, fields: dict[str, str]) -> list[int]:
    """The same form sent twice, as a double click or a browser resend does."""
    statuses = []
    for _ in range(2):
        response = page.request.post(url, form=fields, max_redirects=0)
        statuses.append(response.status)
    return statuses


# -- writes happen once ------------------------------------------------------------


def test_a_produce_is_written_once_despite_reload_back_and_a_double_submit(page, daphne_url, kit):
    topic = kit.topic(partitions=1)
    login(page, daphne_url)
    produce_url = f"{daphne_url}/clusters/{SLUG}/kafka/topics/{topic}/produce/"
    page.goto(produce_url)
    page.fill("textarea[name=value]", "once")
    with page.expect_navigation():
        page.click("#produce-form button[type=submit]")
    assert "/messages/" in page.url
    assert "Produced to partition 0 at offset 0" in page.inner_text("main")
    assert watermarks(topic) == (0, 1)

    page.goto(produce_url)
    page.fill("textarea[name=value]", "twice?")
    fields = form_fields(page, "#produce-form")
    assert all(s == 302 for s in post_twice(page, produce_url, fields))
    assert watermarks(topic) == (0, 2)
    page.go_back()

    page.reload()
    # The result is shown again, from the server, and nothing was written again.
    assert watermarks(topic) == (0, 2)
    assert "Produced to partition 0 at offset 0" in page.inner_text("#write-result")
    page.go_back()
    page.wait_for_selector("#produce-form")
    page.go_forward()
    assert watermarks(topic) == (0, 2)


def test_a_purge_is_not_repeated_by_reload_back_or_a_double_submit(
    page, daphne_url, admin_login, kit
):
    topic = kit.topic(partitions=1)
    kit.fill(topic, 3)
    login(page, daphne_url, admin_login)
    purge_url = f"{daphne_url}/clusters/{SLUG}/kafka/topics/{topic}/purge/"
    page.goto(purge_url)
    submit_with(page, "#purge-form button[type=submit]")
    assert "Deleted 3 records" in page.inner_text("main")
    assert watermarks(topic) == (3, 3)

    kit.fill(topic, 2)  # new records arrive after the purge
    page.reload()
    assert watermarks(topic) == (3, 5)
    assert "Deleted 3 records" in page.inner_text("#write-result")
    page.go_back()
    page.wait_for_selector("#purge-form")
    page.go_forward()
    assert watermarks(topic) == (3, 5)

    page.goto(purge_url)
    fields = form_fields(page, "#purge-form")
    first = page.request.post(purge_url, form=fields, max_redirects=0)
    assert first.status == 302 and watermarks(topic) == (5, 5)
    kit.fill(topic, 1)
    again = page.request.post(purge_url, form=fields, max_redirects=0)
    assert again.status == 302
    assert watermarks(topic) == (5, 6)  # the resent form deleted nothing


def test_an_offset_reset_is_applied_once(page, daphne_url, admin_login, kit):
    topic = kit.topic(partitions=1)
    kit.fill(topic, 10)
    group = kit.commit(kit.name("-ui-reset"), {(topic, 0): 5})
    login(page, daphne_url, admin_login)
    page.goto(f"{daphne_url}/clusters/{SLUG}/kafka/reset-offsets/{group}")
    page.fill("input[name=topic]", topic)
    page.select_option("#reset-to", "earliest")
    page.click("button[value=preview]")
    page.wait_for_selector("#plan")
    submit_with(page, "button[value=apply]")
    assert "Offsets reset for 1 partition" in page.inner_text("main")
    assert committed(group, topic) == 0

    kit.commit(group, {(topic, 0): 7})  # the consumers move on
    page.reload()
    assert committed(group, topic) == 7
    assert "Offsets reset for 1 partition" in page.inner_text("#write-result")
    page.go_back()
    page.go_forward()
    assert committed(group, topic) == 7


# -- reset offsets: who sees what ----------------------------------------------------


def test_an_operator_sees_no_reset_button_and_is_refused_with_a_403(page, daphne_url, kit):
    topic = kit.topic(partitions=1)
    group = kit.commit(kit.name("-ui-op"), {(topic, 0): 0})
    login(page, daphne_url)  # olga is an operator
    page.goto(f"{daphne_url}/clusters/{SLUG}/kafka/groups/{group}")
    page.wait_for_selector("#lag")
    assert page.locator("a[href*='/reset-offsets/']").count() == 0
    assert "Reset offsets" not in page.inner_text("main")
    response = page.goto(f"{daphne_url}/clusters/{SLUG}/kafka/reset-offsets/{group}")
    assert response.status == 403
    assert page.locator("#reset-form").count() == 0


def test_an_admin_sees_an_active_groups_refusal_once(page, daphne_url, admin_login, kit):
    topic = kit.topic(partitions=1)
    kit.fill(topic, 2)
    group = kit.name("-ui-active")
    live = support.LiveConsumer(group, topic)
    try:
        live.wait_until_assigned()
        login(page, daphne_url, admin_login)
        page.goto(f"{daphne_url}/clusters/{SLUG}/kafka/reset-offsets/{group}")
        page.fill("input[name=topic]", topic)
        page.click("button[value=preview]")
        page.wait_for_load_state()
        notices = page.locator("main :is(p, div, li):text-matches('active member', 'i')")
        assert notices.count() == 1
        assert "notice" in (notices.first.get_attribute("class") or "")
    finally:
        live.close()
        kit.track_group(group)


def test_the_preview_sits_below_the_form_and_the_preview_button_stays(
    page, daphne_url, admin_login, kit
):
    topic = kit.topic(partitions=1)
    kit.fill(topic, 4)
    group = kit.commit(kit.name("-ui-preview"), {(topic, 0): 3})
    login(page, daphne_url, admin_login)
    page.goto(f"{daphne_url}/clusters/{SLUG}/kafka/reset-offsets/{group}")
    page.fill("input[name=topic]", topic)
    page.click("button[value=preview]")
    page.wait_for_selector("#plan")
    form = page.locator("#reset-form").bounding_box()
    heading = page.locator("h2", has_text="Preview").bounding_box()
    assert heading["y"] >= form["y"] + form["height"]
    preview = page.locator("#reset-form button[value=preview]")
    assert preview.is_visible() and preview.inner_text().strip() == "Preview"
    assert page.locator("#reset-form #plan").count() == 0


# -- loose ends ----------------------------------------------------------------------


def test_the_kafka_link_lands_on_the_cluster_page(page, daphne_url):
    login(page, daphne_url)
    page.click("nav >> text=Kafka")
    page.wait_for_load_state()
    assert page.url == f"{daphne_url}/clusters/{SLUG}/kafka/"
    assert page.locator("h2", has_text="Brokers").count() == 1


def test_partitions_stay_checkboxes_after_a_bad_timestamp(page, daphne_url, kit):
    topic = kit.topic(partitions=3)
    login(page, daphne_url)
    page.goto(f"{daphne_url}/clusters/{SLUG}/kafka/topics/{topic}/messages/")
    page.check("input[name=partition][value='1']")
    page.select_option("#start", "timestamp")
    page.fill("#timestamp", "not a time")
    with page.expect_navigation():
        page.click("#browse-form button[type=submit]")
    assert page.locator("[role=alert]").count() == 1
    boxes = page.locator("input[name=partition]")
    assert boxes.count() == 3
    assert boxes.evaluate_all("els => els.map(e => e.type)") == ["checkbox"] * 3
    assert page.is_checked("input[name=partition][value='1']")
    assert not page.is_checked("input[name=partition][value='0']")


def test_no_continue_search_after_a_scan_to_the_end(page, daphne_url, kit):
    topic = kit.topic(partitions=1)
    kit.fill(topic, 5)
    login(page, daphne_url)
    page.goto(f"{daphne_url}/clusters/{SLUG}/kafka/topics/{topic}/messages/?q=absent-text")
    assert "scanned to its end" in page.inner_text("#scan")
    assert page.locator("a", has_text="Continue search").count() == 0


# -- the shared look -----------------------------------------------------------------


def test_kafka_pages_use_the_shared_components(page, daphne_url, admin_login, kit):
    topic = kit.topic(partitions=1)
    kit.fill(topic, 2)
    group = kit.commit(kit.name("-ui-look"), {(topic, 0): 1})
    login(page, daphne_url, admin_login)
    # Read live: a collector's sample taken before the fill would show the topic empty.
    page.goto(f"{daphne_url}/clusters/{SLUG}/kafka/topics/?q={topic}&live=1")
    assert page.locator(".table-scroll > table.table#topics").count() == 1
    assert page.locator("#topics td.num", has_text="2").count() >= 1
    assert page.locator("form.filters.form .field").count() >= 1
    assert page.locator("time.when").count() >= 1

    page.goto(f"{daphne_url}/clusters/{SLUG}/kafka/groups/{group}")
    state = page.locator(".facts .badge[data-status]")
    assert state.count() == 1 and state.inner_text() == "Empty"

    page.goto(f"{daphne_url}/clusters/{SLUG}/kafka/topics/{topic}/purge/")
    form = page.locator("#purge-form")
    assert topic in (form.get_attribute("data-confirm") or "")
    asked: list[str] = []

    def refuse(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", refuse)
    form.evaluate("f => f.dispatchEvent(new Event('submit', {cancelable: true}))")
    assert asked == []  # no window.confirm: the page's own dialog asks
    assert watermarks(topic) == (0, 2)
