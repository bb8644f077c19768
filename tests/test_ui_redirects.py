"""Chromium on the redirects page: an admin adds a redirect by click, the letter page shows it,
and Requeue to origin sends the letter to the new target on real RabbitMQ.

Daphne (``dlq_daphne``) watches ``test-rabbitmq`` in this run's vhost; the letter
is stored in the served database as the capture would store it.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import PYTHON, ROOT
from tests.support import deadletters as h
from tests.support.letter_page import SEED, confirm, declare_queue, letter_row, run_script, take

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]

PASSWORD = "redirects-admin-pass-5"


@pytest.fixture(scope="module")
def served_admin(dlq_daphne) -> str:
    _url, env = dlq_daphne
    username = f"redir-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [PYTHON, "manage.py", "ensure_user", username, "--role", "admin"],
        cwd=ROOT,
        env={**env, "MQB_USER_PASSWORD": PASSWORD},
        check=True,
        capture_output=True,
        timeout=90,
    )
    return username


def depth(vhost: str, queue: str) -> int:
    # Playwright's sync API keeps an event loop in this thread: ask from another one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, h.depth(vhost, queue)).result()


def log_in(browser, url: str, username: str):
    page = browser.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    return page


def test_an_admin_adds_a_redirect_by_click_and_the_requeue_follows_it(
    browser, dlq_daphne, rabbitmq_vhost, served_admin
):
    url, env = dlq_daphne
    old, new = declare_queue(rabbitmq_vhost), declare_queue(rabbitmq_vhost)
    [letter_id] = run_script(
        env, SEED, {"letters": [letter_row(old, f"{old}.dlq", b'{"a": 1}', vhost=rabbitmq_vhost)]}
    )
    page = log_in(browser, url, served_admin)

    page.goto(f"{url}/deadletters/")
    page.click("a.redirects-link")
    page.select_option("#redirect-cluster-form select[name=cluster]", "test-rabbitmq")
    page.click("#redirect-cluster-form button[type=submit]")
    page.fill("input[name='from.routing_key']", old)
    page.fill("input[name='to.routing_key']", new)
    page.fill("input[name=note]", "queue renamed")
    page.click("#redirect-form button[type=submit]")
    page.wait_for_selector("#redirects-table")
    row = page.locator("#redirects-table tbody tr", has_text=new)
    assert "queue renamed" in row.inner_text()
    assert row.locator(".badge").inner_text() == "Enabled"
    redirect_id = row.get_attribute("data-redirect")

    page.goto(f"{url}/deadletters/{letter_id}/")
    goes_to = page.locator("#letter-goes-to")
    assert f"(default) / {new}" in goes_to.inner_text()
    assert f"redirected from (default) / {old}" in goes_to.inner_text()
    assert f"redirect #{redirect_id}, queue renamed" in goes_to.inner_text()
    # The confirmation names where the letter will go, not the origin it came from.
    page.click("#requeue-button")
    question = page.locator("dialog[open] #confirm-dialog-text").inner_text()
    assert f"to (default) / {new} (redirect #{redirect_id})?" in question
    assert old not in question
    page.keyboard.press("Escape")
    page.wait_for_selector("dialog[open]", state="detached")
    confirm(page, page.locator("#requeue-button"))

    [message] = take(rabbitmq_vhost, new)
    assert message.body == b'{"a": 1}'
    assert h.wait_for(
        lambda: page.locator("#letter-status .badge").inner_text() == "Requeued" or None, 10
    )


def test_a_bad_name_is_shown_under_its_field(browser, dlq_daphne, served_admin):
    url, _env = dlq_daphne
    page = log_in(browser, url, served_admin)

    page.goto(f"{url}/deadletters/redirects/new?cluster=test-kafka")
    page.fill("input[name='from.topic']", "has spaces")
    page.fill("input[name='to.topic']", "orders-v2")
    page.click("#redirect-form button[type=submit]")

    error = page.locator("#redirect-error")
    assert "from.topic" in error.inner_text()
    assert page.locator("input[name='from.topic']").get_attribute("aria-invalid") == "true"
    assert page.locator("input[name='from.topic']").input_value() == "has spaces"
