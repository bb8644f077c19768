"""Chromium on a dead letter's page and a finished job's page: fields, tables and values read right.

Same fixtures as ``tests/test_ui_letter.py``: Daphne (``dlq_daphne``) on the served
database, letters and jobs stored by a ``python -c`` script.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.support.letter_page import SEED, declare_queue, letter_row, login, run_script

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]

FINISHED_JOB = """
import json, sys
from datetime import timedelta
import django
django.setup()
from django.utils import timezone
from dashboard.core.clusters import sync_cluster_rows
from dashboard.models import DeadLetter, Job
spec = json.loads(sys.stdin.read())
clusters = sync_cluster_rows()
end = timezone.now()
job = Job.objects.create(
    kind="deadletters.requeue", state="done", total=8, done=8, failed=0,
    started_at=end - timedelta(seconds=4), finished_at=end, progress_at=end,
    verdict="Done: 8 of 8 requeued, 0 failed.",
)
for i in range(8):
    DeadLetter.objects.create(
        cluster=clusters["test-rabbitmq"], vhost=spec["vhost"], dlq="polish.dlq",
        capture_key=f"polish:{job.pk}:{i}", message_id=f"m{i}", origin_queue="polish",
        origin_routing_key="polish", reason="rejected", fingerprint="polish",
        body=b"{}", body_size=2, first_failed_at=end, claim_job=job.pk,
        status="failed_again" if i < 2 else "requeued",
    )
print(json.dumps([job.pk]))
"""

X_DEATH_HEADERS: dict[str, Any] = {
    "x-death": [
        {
            "count": 3,
            "reason": "rejected",
            "queue": "orders-work-queue",
            "time": {"$timestamp": "2026-12-06T12:25:59+00:00"},
            "exchange": "orders-exchange",
            "routing-keys": ["orders.created", "orders.any"],
        }
    ],
    "x-first-death-queue": "orders-work-queue",
    "sent-at": {"$timestamp": "2026-12-05T08:00:00+00:00"},
    "trace": {"step": "billing", "at": {"$timestamp": "2026-12-05T08:00:01+00:00"}},
    "note": None,
    "retry": True,
}

ISO = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d")

ONE_LINE = """el => {
  const range = document.createRange();
  range.selectNodeContents(el);
  const tops = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
  return tops.size;
}"""


@pytest.fixture
def rabbit(dlq_daphne, rabbitmq_vhost):
    url, env = dlq_daphne
    return url, env, rabbitmq_vhost, declare_queue(rabbitmq_vhost)


def seed_letter(env: dict[str, str], queue: str, body: bytes, **extra: Any) -> int:
    [letter_id] = run_script(
        env, SEED, {"letters": [letter_row(queue, f"{queue}.dlq", body, **extra)]}
    )
    return int(letter_id)


# -- captured from: the vhost is its own field; x-death is its table ------------------


def test_the_vhost_is_a_labelled_field_and_never_a_doubled_slash(browser, rabbit):
    url, env, _vhost, queue = rabbit
    letter_id = seed_letter(env, queue, b"{}", vhost="/")
    page, _native = login(browser, url)
    page.goto(f"{url}/deadletters/{letter_id}/")
    facts = page.locator("dl.facts").first
    assert "/ /" not in facts.inner_text()
    assert facts.locator("dt", has_text="Vhost").count() == 1
    assert page.inner_text("#letter-vhost") == "/"
    assert page.inner_text("#letter-dlq") == f"{queue}.dlq"


def test_x_death_is_shown_as_its_table_and_header_times_are_readable(browser, rabbit):
    url, env, vhost, queue = rabbit
    letter_id = seed_letter(env, queue, b"{}", vhost=vhost, headers=X_DEATH_HEADERS)
    page, _native = login(browser, url)
    page.goto(f"{url}/deadletters/{letter_id}/")
    table = page.locator("#letter-x-death")
    heads = [t.strip() for t in table.locator("thead th").all_inner_texts()]
    assert heads == ["Queue", "Reason", "Count", "Exchange", "Routing keys", "Time"], heads
    cells = [t.strip() for t in table.locator("tbody tr").first.locator("td").all_inner_texts()]
    assert cells[:5] == [
        "orders-work-queue",
        "rejected",
        "3",
        "orders-exchange",
        "orders.created, orders.any",
    ], cells
    stamp = table.locator("tbody tr td time.when")
    assert stamp.get_attribute("datetime").startswith("2026-12-06T12:25:59")
    assert not ISO.search(stamp.inner_text()), stamp.inner_text()

    headers = page.locator("#letter-headers")
    x_death_row = headers.locator("tr", has=page.locator("th", has_text="x-death"))
    text = x_death_row.inner_text()
    assert "{" not in text and not ISO.search(text), text
    assert x_death_row.locator("a[href='#letter-x-death']").count() == 1
    sent = headers.locator("tr", has=page.locator("th", has_text="sent-at"))
    assert sent.locator("time.when").get_attribute("datetime").startswith("2026-12-05T08:00:00")
    assert not ISO.search(sent.inner_text()), sent.inner_text()
    trace = headers.locator("tr", has=page.locator("th", has_text="trace")).inner_text()
    assert "billing" in trace and "2026-12-05 08:00:01 UTC" in trace, trace
    assert not ISO.search(page.inner_text("#letter-headers")), page.inner_text("#letter-headers")


# -- the letter's tables: the shared table style, nothing broken mid-word at 390 ------


def test_letter_tables_are_styled_and_never_break_words_on_a_phone(browser, rabbit):
    url, env, vhost, queue = rabbit
    letter_id = seed_letter(env, queue, b"{}", vhost=vhost, headers=X_DEATH_HEADERS)
    page, _native = login(browser, url)
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{url}/deadletters/{letter_id}/")
    for selector in ("#letter-x-death", "#letter-headers"):
        table = page.locator(selector)
        assert "table" in (table.get_attribute("class") or "").split(), selector
        assert table.evaluate("el => el.parentElement.classList.contains('table-scroll')")
    first_head = page.locator("#letter-x-death thead th").first
    assert first_head.evaluate("el => getComputedStyle(el).textAlign") in ("left", "start")
    reason, count = (
        page.locator("#letter-x-death thead th").nth(1),
        page.locator("#letter-x-death thead th").nth(2),
    )
    gap = count.bounding_box()["x"] - (reason.bounding_box()["x"] + reason.bounding_box()["width"])
    pad = count.evaluate("el => parseFloat(getComputedStyle(el).paddingLeft)")
    assert gap >= 0 and pad >= 4, (gap, pad)
    stamp = page.locator("#letter-x-death tbody time.when").first
    assert stamp.evaluate(ONE_LINE) == 1, stamp.inner_text()
    for cell in page.locator("#letter-headers td.type").all():
        assert cell.evaluate(ONE_LINE) == 1, cell.inner_text()
    for cell in page.locator("#letter-x-death tbody td").all():
        words = cell.inner_text().split()
        if len(words) <= 1:
            assert cell.evaluate(ONE_LINE) == 1, cell.inner_text()
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390, width


# -- the body: download offered as what it is; an unknown value is the shared dash ----


def test_a_small_body_offers_download_not_the_whole_body_and_unknowns_use_the_dash(browser, rabbit):
    url, env, vhost, queue = rabbit
    small = seed_letter(
        env, queue, json.dumps({"order": 1, "pad": "x" * 150}).encode(), vhost=vhost
    )
    big = seed_letter(env, queue, b"y" * 300_000, vhost=vhost)
    page, _native = login(browser, url)
    page.goto(f"{url}/deadletters/{small}/")
    link = page.locator("a[download]")
    assert "whole" not in link.inner_text(), link.inner_text()
    assert link.inner_text().strip() == "Download"
    exception = page.locator("dl.facts dt:text-is('Exception') + dd")
    assert exception.inner_text().strip() == "\u2013"
    assert "\u2014" not in page.inner_text("dl.facts")

    page.goto(f"{url}/deadletters/{big}/")
    assert "download the whole body" in page.locator("a[download]").inner_text()


# -- a finished job: one value column, its average rate, no live updates -------------


def test_a_finished_job_lines_up_its_values_shows_its_average_rate_and_stops_live_updates(
    browser, rabbit
):
    url, env, vhost, _queue = rabbit
    [job_id] = run_script(env, FINISHED_JOB, {"vhost": vhost})
    page, _native = login(browser, url)
    page.set_viewport_size({"width": 1440, "height": 900})
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    page.goto(f"{url}/jobs/{job_id}/")
    left = (
        "el => { const r = document.createRange(); r.selectNodeContents(el);"
        " return r.getBoundingClientRect().left; }"
    )
    lefts = {
        sel: page.locator(f"#job {sel}").first.evaluate(left)
        for sel in (
            'dd:has([data-field="done"])',
            'dd[data-field="rate"]',
            'dd[data-field="failed"]',
            'dd[data-count="requeued"]',
            'dd[data-count="came_back"]',
        )
    }
    assert max(lefts.values()) - min(lefts.values()) < 2, lefts
    assert page.inner_text('#job [data-field="rate"]') == "2/s"
    live = page.inner_text("#live-state")
    assert "finished" in live.lower() and " on" not in live, live
    page.wait_for_function("() => document.getElementById('live-state').dataset.state === 'final'")
    # The job's own socket (a socket of the page login landed on may still be closing).
    job_sockets = [ws for ws in sockets if f"/ws/jobs/{job_id}/" in ws.url]
    assert all(ws.is_closed() for ws in job_sockets), [ws.url for ws in job_sockets]
