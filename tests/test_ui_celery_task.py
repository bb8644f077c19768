"""Chromium on a Celery task letter: its task section, escaped and accessible, and Retry task.

Daphne (``dlq_daphne``) watches ``test-rabbitmq`` in this run's vhost; the
letter is stored in the served database as the capture stores it, and *Retry
task* with a new id is read back from its real RabbitMQ queue.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support import pages as p
from tests.support.letter_page import (
    SEED,
    confirm,
    declare_queue,
    letter_row,
    login,
    run_script,
    take,
)

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]

HOSTILE = "<img src=x onerror=alert(1)>"


def seed_task_letter(env: dict[str, str], vhost: str, queue: str) -> tuple[int, str]:
    task_id = str(uuid.uuid4())
    body = json.dumps([[HOSTILE, 12], {"currency": "EUR"}, {"callbacks": None}]).encode()
    headers = {
        "lang": "py", "task": "billing.charge", "id": task_id, "root_id": task_id,
        "parent_id": "parent-7", "retries": 1, "eta": "2026-12-06T10:00:00+00:00",
        "exception": "billing.errors.Declined", "exc_message": "card declined",
        "traceback": "Traceback (most recent call last):\n  File \"billing.py\", line 9",
    }  # fmt: skip
    row = letter_row(
        queue,
        f"{queue}.dlq",
        body,
        vhost=vhost,
        headers=headers,
        props={"content_type": "application/json", "content_encoding": "utf-8",
               "correlation_id": task_id},
        failure_details={"task": {"name": "billing.charge", "id": task_id}},
    )  # fmt: skip
    [letter_id] = run_script(env, SEED, {"letters": [row]})
    return letter_id, task_id


@pytest.fixture
def task_letter(dlq_daphne, rabbitmq_vhost) -> tuple[str, str, str, int, str]:
    url, env = dlq_daphne
    queue = declare_queue(rabbitmq_vhost)
    letter_id, task_id = seed_task_letter(env, rabbitmq_vhost, queue)
    return url, rabbitmq_vhost, queue, letter_id, task_id


def test_the_task_section_is_escaped_fits_a_phone_and_retry_task_sends_a_new_id(
    browser, task_letter
):
    url, vhost, queue, letter_id, task_id = task_letter
    page, native = login(browser, url)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{url}/deadletters/{letter_id}/")
    section = page.locator("#celery-task")
    assert section.locator("#task-name").inner_text() == "billing.charge"
    assert section.locator("#task-id").inner_text() == task_id
    assert HOSTILE in section.locator("#task-args").inner_text()
    assert section.locator("img").count() == 0
    assert section.locator("#task-parent").inner_text() == "parent-7"
    assert section.locator("#task-root").inner_text() == task_id
    assert "billing.errors.Declined" in section.locator("#task-exception").inner_text()
    assert "line 9" in section.locator("#task-traceback").inner_text()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the letter page is {width} px wide on a phone"

    page.check("input[name=task_id][value=new]")
    confirm(page, page.locator("#retry-task-button"))
    assert native == []
    (message,) = take(vhost, queue)
    headers: dict[str, Any] = dict(message.headers)
    new_id = headers["id"]
    assert new_id != task_id and headers["root_id"] == task_id
    assert message.correlation_id == new_id
    assert json.loads(message.body)[0][0] == HOSTILE
    assert new_id in page.locator(".flash").inner_text()


def test_axe_finds_no_serious_violation_on_a_task_letter(browser, task_letter):
    url, _vhost, _queue, letter_id, _task_id = task_letter
    context = browser.new_context(bypass_csp=True)  # axe is injected as an inline script
    try:
        page = context.new_page()
        page.goto(url + "/login/")
        page.fill("input[name=username]", "olga")
        page.fill("input[name=password]", "browser-pass-1")
        page.click("button[type=submit]")
        page.wait_for_url(url + "/")
        page.emulate_media(color_scheme="light")
        page.goto(f"{url}/deadletters/{letter_id}/")
        found = p.axe_violations(page)
        assert found == [], json.dumps(found, indent=2)[:3000]
        # The dark scheme changes colours only: the colour rules again, on the same page.
        p.switch_scheme(page, "dark")
        found = p.axe_violations(page, p.COLOUR_RULES)
        assert found == [], json.dumps(found, indent=2)[:3000]
    finally:
        context.close()
