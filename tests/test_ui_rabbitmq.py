"""Chromium on the RabbitMQ pages: writes are never sent twice, and the pages read clearly.

Back, Reload and a double submit must not publish or peek again: the messages
actually in the real queue (and the peeks in the audit log) are counted.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest

from tests.support.rabbitmq import declare, delete_queue, drain, mgmt, publish, q, unique, wait_for
from tests.support.served_db import query

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]

SLUG = "test-rabbitmq"


@pytest.fixture
def page(browser, dlq_daphne):
    url, _ = dlq_daphne
    context = browser.new_context()
    page = context.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    yield page
    context.close()


@pytest.fixture
def queue(rabbitmq_vhost):
    name = unique("ui")
    declare(rabbitmq_vhost, name)
    yield name
    delete_queue(rabbitmq_vhost, name)


def base(dlq_daphne: tuple[str, dict[str, str]]) -> str:
    return dlq_daphne[0]


def peeks_audited(dlq_daphne: tuple[str, dict[str, str]], vhost: str, name: str) -> int:
    rows = query(
        dlq_daphne[1]["DATABASE_URL"],
        "SELECT count(*) FROM dashboard_auditentry WHERE action = %s AND outcome = %s"
        " AND target = %s",
        ("rabbitmq.peek", "ok", f"queue {name!r} in vhost {vhost!r}"),
    )
    return int(rows[0][0])


def form_data(page: Any, selector: str) -> dict[str, str]:
    data: dict[str, str] = page.evaluate(
        "(s) => Object.fromEntries(new FormData(document.querySelector(s)))", selector
    )
    return data


def publish_url(root: str, vhost: str, name: str) -> str:
    query = urlencode({"vhost": vhost, "exchange": "", "routing_key": name}, quote_via=quote)
    return f"{root}/rabbitmq/{SLUG}/publish?{query}"


def peek_url(root: str, vhost: str, name: str) -> str:
    query = urlencode({"vhost": vhost, "name": name}, quote_via=quote)
    return f"{root}/rabbitmq/{SLUG}/queue/messages?{query}"


# -- writes answer with a redirect: Back and Reload show the result, never send again ----------


def test_back_and_reload_after_publishing_do_not_publish_again(
    page, dlq_daphne, rabbitmq_vhost, queue
):
    page.goto(publish_url(base(dlq_daphne), rabbitmq_vhost, queue))
    page.fill("textarea[name=body]", "only once")
    page.click("form.publish-form button[type=submit]")
    page.wait_for_selector("#publish-result")
    result_url = page.url
    page.click("nav[aria-label='RabbitMQ sections'] >> text=Exchanges")
    page.wait_for_url("**/exchanges")
    page.go_back()
    page.wait_for_selector("#publish-result")
    assert page.url == result_url
    page.reload()
    assert "routed and confirmed" in page.inner_text("#publish-result")
    bodies = [m["payload"] for m in drain(rabbitmq_vhost, queue)]
    assert bodies == ["b25seSBvbmNl"]  # base64 of "only once": one message, not two or three


def test_a_double_submit_publishes_once(page, dlq_daphne, rabbitmq_vhost, queue):
    page.goto(publish_url(base(dlq_daphne), rabbitmq_vhost, queue))
    page.fill("textarea[name=body]", "double")
    data = form_data(page, "form.publish-form")
    target = page.url
    first = page.request.post(target, form=data, max_redirects=0)
    second = page.request.post(target, form=data, max_redirects=0)
    assert first.status in (302, 303) and second.status in (302, 303)
    assert first.headers["location"] == second.headers["location"]
    assert len(drain(rabbitmq_vhost, queue)) == 1


def test_back_and_reload_after_a_peek_do_not_peek_again(page, dlq_daphne, rabbitmq_vhost, queue):
    publish(rabbitmq_vhost, queue, "first", "second")
    wait_for(lambda: len(drain_copy(rabbitmq_vhost, queue)) == 2, what="two messages")
    page.goto(peek_url(base(dlq_daphne), rabbitmq_vhost, queue))
    page.check("input[name=confirm]")
    page.click("#peek-form button[type=submit]")
    page.wait_for_selector("#message-2")
    result_url = page.url
    page.click("nav[aria-label='RabbitMQ sections'] >> text=Exchanges")
    page.wait_for_url("**/exchanges")
    page.go_back()
    page.wait_for_selector("#message-2")
    assert page.url == result_url
    page.reload()
    assert page.inner_text("#message-1 pre.body") == "first"
    assert peeks_audited(dlq_daphne, rabbitmq_vhost, queue) == 1
    assert len(drain(rabbitmq_vhost, queue)) == 2  # a peek requeues: nothing lost


def test_a_double_submitted_peek_peeks_once(page, dlq_daphne, rabbitmq_vhost, queue):
    publish(rabbitmq_vhost, queue, "one")
    page.goto(peek_url(base(dlq_daphne), rabbitmq_vhost, queue))
    page.check("input[name=confirm]")
    data = form_data(page, "#peek-form")
    target = page.url.split("?")[0]
    first = page.request.post(target, form=data, max_redirects=0)
    second = page.request.post(target, form=data, max_redirects=0)
    assert first.status in (302, 303) and second.status in (302, 303)
    assert first.headers["location"] == second.headers["location"]
    assert peeks_audited(dlq_daphne, rabbitmq_vhost, queue) == 1


def drain_copy(vhost: str, name: str) -> list[dict[str, Any]]:
    """The queue's messages, read and requeued (management API)."""
    with mgmt() as http:
        response = http.post(
            f"/api/queues/{q(vhost)}/{q(name)}/get",
            json={"count": 100, "ackmode": "ack_requeue_true", "encoding": "auto"},
        )
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()
        return data


# -- loose ends --------------------------------------------------------------------------------


def test_publish_radio_buttons_sit_next_to_their_labels(page, dlq_daphne, rabbitmq_vhost, queue):
    page.goto(publish_url(base(dlq_daphne), rabbitmq_vhost, queue))
    gaps = page.evaluate(
        """() => [...document.querySelectorAll("input[name=body_encoding]")].map((input) => {
          const label = input.closest("label");
          const range = document.createRange();
          range.selectNodeContents(label);
          range.setStartAfter(input);
          const text = range.getBoundingClientRect();
          const box = input.getBoundingClientRect();
          return {gap: text.left - box.right, dy: Math.abs((text.top + text.bottom) / 2
                  - (box.top + box.bottom) / 2), width: box.width};
        })"""
    )
    assert len(gaps) == 3
    for gap in gaps:
        assert 0 <= gap["gap"] <= 12, gap
        assert gap["dy"] <= 6 and gap["width"] <= 24, gap


def test_the_header_keeps_its_height_on_rabbitmq_pages(page, dlq_daphne, rabbitmq_vhost, queue):
    root = base(dlq_daphne)
    page.goto(root + "/")
    height = page.locator("header.topbar").bounding_box()["height"]
    button = page.evaluate(
        "() => getComputedStyle(document.querySelector('header.topbar button')).padding"
    )
    for path in (
        f"/rabbitmq/{SLUG}/",
        f"/rabbitmq/{SLUG}/exchanges",
        f"/rabbitmq/{SLUG}/vhosts",
        f"/rabbitmq/{SLUG}/queue?vhost={q(rabbitmq_vhost)}&name={queue}",
        publish_url("", rabbitmq_vhost, queue),
    ):
        page.goto(root + path)
        assert page.locator("header.topbar").bounding_box()["height"] == height, path
        assert (
            page.evaluate(
                "() => getComputedStyle(document.querySelector('header.topbar button')).padding"
            )
            == button
        ), path
        # The RabbitMQ stylesheet is loaded from the head, not from inside the page.
        assert page.locator("main link[href*=rabbitmq]").count() == 0, path
        assert page.locator("head link[href*=rabbitmq]").count() == 1, path


def test_sorting_by_consumers_says_statistics_are_fetched(page, dlq_daphne, rabbitmq_vhost, queue):
    root = base(dlq_daphne)
    page.goto(f"{root}/rabbitmq/{SLUG}/?vhost={q(rabbitmq_vhost)}")
    stats = page.locator("input[name=stats]")
    assert not stats.is_checked()
    page.click("#queue-table th >> text=Consumers")
    page.wait_for_url("**sort=consumers**")
    assert stats.is_checked()
    label = page.locator("label:has(input[name=stats])").inner_text()
    assert "sorting by consumers" in label.lower()
    assert "not fetched" not in page.inner_text(".meta")


def test_a_dead_letter_exchange_set_by_a_policy_shows_without_statistics(
    page, dlq_daphne, rabbitmq_vhost
):
    name = unique("ui-policy")
    with mgmt() as http:
        http.put(
            f"/api/policies/{q(rabbitmq_vhost)}/{name}",
            json={
                "pattern": f"^{name}$",
                "definition": {"dead-letter-exchange": f"{name}-dlx"},
                "apply-to": "queues",
            },
        ).raise_for_status()
    declare(rabbitmq_vhost, name)
    try:
        page.goto(f"{base(dlq_daphne)}/rabbitmq/{SLUG}/?vhost={q(rabbitmq_vhost)}&name={name}")
        assert not page.locator("input[name=stats]").is_checked()
        row = page.locator("#queue-table tbody tr", has_text=name)
        assert f"{name}-dlx" in row.inner_text()
        assert "policy" in row.inner_text()
    finally:
        delete_queue(rabbitmq_vhost, name)
        with mgmt() as http:
            http.delete(f"/api/policies/{q(rabbitmq_vhost)}/{name}")


def test_the_vhosts_page_says_as_of_when(page, dlq_daphne):
    page.goto(f"{base(dlq_daphne)}/rabbitmq/{SLUG}/vhosts")
    stamp = page.locator(".page-head time.when")
    assert stamp.count() == 1
    assert stamp.get_attribute("datetime")
    assert "as of" in page.inner_text(".page-head").lower()
