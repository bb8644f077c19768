"""Chromium: requeue letters later from their page, see them scheduled, bring one forward,
cancel another, and read the schedules' counts.

Daphne (``dlq_daphne``) serves a database the letters are stored in by a
``python -c`` script. No worker runs here, so a letter brought forward stays
scheduled with its due time now (sending it is the dispatcher's part).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.support.letter_page import SEED, confirm, declare_queue, letter_row, login, run_script
from tests.support.pages import axe_violations

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]

READ = """
import json, sys
import django
django.setup()
from dashboard.models import DeadLetter
ids = json.loads(sys.stdin.read())
print(json.dumps({str(r.pk): [r.status, r.due_at.isoformat() if r.due_at else None, r.schedule_id]
                  for r in DeadLetter.objects.filter(pk__in=ids)}))
"""


def state(env: dict[str, str], pk: int) -> tuple[str, datetime | None, int | None]:
    status, due, schedule = run_script(env, READ, [pk])[str(pk)]
    return status, datetime.fromisoformat(due) if due else None, schedule


def test_requeue_later_send_now_and_cancel_by_click(browser, dlq_daphne, rabbitmq_vhost):
    url, env = dlq_daphne
    queue = declare_queue(rabbitmq_vhost)
    group = uuid.uuid4().hex[:16]
    first, second = run_script(
        env,
        SEED,
        {
            "letters": [
                letter_row(
                    queue, f"{queue}.dlq", b'{"n": %d}' % i, vhost=rabbitmq_vhost, fingerprint=group
                )
                for i in range(2)
            ]
        },
    )
    page, native = login(browser, url)

    # After 10 minutes, from the letter's page.
    page.goto(f"{url}/deadletters/{first}/")
    form = page.locator("#requeue-later-form")
    form.locator("input[name=amount]").fill("10")
    form.locator("select[name=unit]").select_option("minutes")
    before = datetime.now(UTC)
    confirm(page, page.locator("#requeue-later"))
    after = datetime.now(UTC)
    status, due, schedule_a = state(env, first)
    assert status == "scheduled" and due is not None and schedule_a is not None
    assert before + timedelta(minutes=10) - timedelta(seconds=1) <= due
    assert due <= after + timedelta(minutes=10)
    notice = page.locator("#letter-schedule").inner_text()
    assert re.search(rf"Scheduled: due .+ \(schedule #{schedule_a}\)", notice), notice
    when = page.locator("#letter-schedule time.when")
    assert datetime.fromisoformat(when.get_attribute("datetime").replace("Z", "+00:00")) == due
    assert page.locator("#letter-status .badge").get_attribute("data-status") == "scheduled"
    assert page.locator("#requeue-later-form").count() == 0

    # At a local time: the browser sends it in UTC.
    page.goto(f"{url}/deadletters/{second}/")
    form = page.locator("#requeue-later-form")
    form.locator("input[name=when][value=at]").check()
    local = page.evaluate(
        """() => { const d = new Date(Date.now() + 2 * 3600 * 1000);
        const p = n => String(n).padStart(2, "0");
        return d.getFullYear() + "-" + p(d.getMonth() + 1) + "-" + p(d.getDate()) + "T" +
               p(d.getHours()) + ":" + p(d.getMinutes()); }"""
    )
    form.locator("input[name=at]").fill(local)
    expected = page.evaluate("t => new Date(t).toISOString()", local)
    confirm(page, page.locator("#requeue-later"))
    status, due_b, schedule_b = state(env, second)
    assert status == "scheduled"
    assert due_b == datetime.fromisoformat(expected.replace("Z", "+00:00"))

    # The inbox shows both as scheduled with their due times.
    page.goto(f"{url}/deadletters/?view=rows&group={group}")
    for pk in (first, second):
        cell = page.locator(f"tr:has(a[href='/deadletters/{pk}/']) .status-cell")
        assert "Scheduled" in cell.inner_text() and "due" in cell.inner_text()
        assert cell.locator(".due time.when").count() == 1

    # Bring the first forward: due now.
    page.goto(f"{url}/deadletters/{first}/")
    confirm(page, page.locator("#letter-send-now"))
    status, due, _ = state(env, first)
    assert status == "scheduled" and due is not None and due <= datetime.now(UTC)
    assert "is due now" in page.inner_text("main")

    # Cancel the second: pending again, no longer in its schedule.
    page.goto(f"{url}/deadletters/{second}/")
    confirm(page, page.locator("#letter-schedule-cancel"))
    assert state(env, second) == ("pending", None, None)
    assert page.locator("#letter-status .badge").get_attribute("data-status") == "pending"
    assert page.locator("#requeue-later-form").count() == 1

    # The schedules page and each schedule's counts.
    page.goto(f"{url}/deadletters/")
    page.click("#schedules-link")
    page.wait_for_url(f"{url}/deadletters/schedules/")
    row_a = page.locator(f"tr[data-schedule='{schedule_a}']")
    assert row_a.locator("[data-count=waiting]").inner_text() == "1"
    row_b = page.locator(f"tr[data-schedule='{schedule_b}']")
    assert row_b.get_attribute("data-state") == "cancelled"
    assert row_b.locator("[data-count=cancelled]").inner_text() == "1"
    row_a.locator(f"a[href='/deadletters/schedules/{schedule_a}/']").click()
    page.wait_for_url(f"{url}/deadletters/schedules/{schedule_a}/")
    assert page.locator("#schedule-counts [data-count=waiting]").inner_text() == "1"
    assert page.locator(f"tr[data-letter='{first}']").count() == 1
    assert page.locator("#schedule-send-now").count() == 1
    assert native == []
    page.close()

    # axe on a scheduled letter's page and a schedule's page (axe needs its script injected).
    context = browser.new_context(bypass_csp=True)
    try:
        page = context.new_page()
        page.goto(url + "/login/")
        page.fill("input[name=username]", "olga")
        page.fill("input[name=password]", "browser-pass-1")
        page.click("button[type=submit]")
        page.wait_for_url(url + "/")
        for path in (f"/deadletters/{first}/", f"/deadletters/schedules/{schedule_a}/"):
            page.goto(url + path)
            assert page.locator("#letter-send-now, #schedule-send-now").count() == 1
            assert axe_violations(page) == [], path
    finally:
        context.close()
