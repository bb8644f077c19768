"""The dead-letter inbox and the audit log as a user sees them on a laptop and a phone, in
Debian's Chromium against Daphne: tables that fit, actions with their weight, time filters in
local time, compact audit rows and readable audit labels.

The letters are written here with long names like the demo's, so the widths are known.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from tests.conftest import PYTHON, ROOT

PASSWORD = "polish-admin-pass-5"

SEED = """
import json, sys, uuid
import django
django.setup()
from brokers.decode.fingerprint import fingerprint
from dashboard.core.clusters import sync_cluster_rows
from dashboard.models import AuditEntry, DeadLetter
clusters = sync_cluster_rows()
vhost, u = sys.argv[1], sys.argv[2]
dlq, queue = f"review-after-user-events-{u}-dlq", f"review-after-celery-tasks-{u}"
kafka_dlq, topic = f"review-after-user-events-{u}-dlq", f"review-after-user-events-{u}"
messages = ["payload references a deleted account", "user id does not match tenant",
            "schema version 0 is no longer supported", "missing required field 'email'"]
statuses = ["pending", "requeuing", "requeued", "failed_again", "requeue_failed", "discarded"]
i = 0
for cluster, name, origin in (("test-rabbitmq", dlq, {"origin_queue": queue}),
                              ("test-kafka", kafka_dlq, {"origin_topic": topic})):
    kind = "topic:" + topic if "origin_topic" in origin else "queue:" + queue + "|exchange:"
    for message in messages:
        for status in statuses:
            i += 1
            DeadLetter.objects.create(
                cluster=clusters[cluster], vhost=vhost if cluster == "test-rabbitmq" else "",
                dlq=name, capture_key=f"polish-{u}-{i}", message_id=str(uuid.uuid4()),
                reason="rejected", exception_class="demo.payloads.InvalidPayload",
                exception_message=message, status=status, poison=status == "failed_again",
                last_error="connection refused" if status == "requeue_failed" else "",
                fingerprint=fingerprint(
                    origin=f"{clusters[cluster].kind}:{kind}", reason="rejected",
                    exception_class="demo.payloads.InvalidPayload", exception_message=message),
                body=b"{}", **origin)
who = f"polish-{u}"
detail = "Done: 281 of 281 requeued, 0 failed; " + "the letters came back to the DLQ again " * 12
AuditEntry.objects.create(username=who, action="deadletters.requeue.finished",
                          target="deadletters", outcome="ok", detail=detail,
                          parameters={"job": 1, "done": 281, "state": "done", "note": "x" * 300})
AuditEntry.objects.create(username=who, action="deadletter.task.requeue",
                          target="deadletter:12", outcome="ok", detail="")
AuditEntry.objects.create(username=who, action="deadletters.requeue", target="deadletters",
                          outcome="refused", detail="needs the operator role")
print(json.dumps({"dlq": dlq, "kafka_dlq": kafka_dlq, "origin": u, "who": who,
                  "detail": detail}))
"""


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PYTHON, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=90
    )
    return done.stdout


@pytest.fixture(scope="module")
def seeded(dlq_daphne, rabbitmq_vhost) -> tuple[str, dict[str, Any]]:
    url, env = dlq_daphne
    admin = f"pol-{uuid.uuid4().hex[:6]}"
    with_password = {**env, "MQB_USER_PASSWORD": PASSWORD}
    run(with_password, "manage.py", "ensure_user", admin, "--role", "admin")
    made = json.loads(run(env, "-c", SEED, rabbitmq_vhost, uuid.uuid4().hex[:8]).splitlines()[-1])
    made["admin"] = admin
    return url, made


def log_in(context, url: str, username: str):
    page = context.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    return page


@pytest.fixture
def page(browser, seeded):
    url, made = seeded
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = log_in(context, url, made["admin"])
    yield page
    context.close()


# Each table's scroll box: how wide its content is and how wide the box shows.
SCROLL = """(selector) => {
  const box = document.querySelector(selector).closest(".table-scroll");
  const table = box.querySelector("table");
  const columns = Array.from(table.tHead.rows[0].cells).map((th) =>
    th.textContent.trim().slice(0, 10) + " " + Math.round(th.getBoundingClientRect().width));
  return {scroll: box.scrollWidth, client: box.clientWidth,
          page: document.documentElement.scrollWidth, columns};
}"""


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_both_inbox_tables_fit_a_laptop_without_horizontal_scroll(page, seeded):
    url, made = seeded
    page.goto(f"{url}/deadletters/?{urlencode({'origin': made['origin']})}")
    groups = page.locator("table.groups tbody tr[data-group]")
    assert groups.count() == 8
    # The worst case: every status column is shown.
    heads = [" ".join(h.split()) for h in page.locator("table.groups thead th").all_inner_texts()]
    for head in ("Requeuing", "Came back", "Poison", "Requeue failed", "Discarded"):
        assert head in heads, heads
    assert "Last seen first seen" in heads, heads
    sizes = page.evaluate(SCROLL, "table.groups")
    assert sizes["scroll"] <= sizes["client"], str(sizes)
    assert sizes["page"] <= 1440, sizes
    # The exception reads as its short class; the full one is on hover.
    exception = page.locator("table.groups td.exception .name").first
    assert exception.inner_text() == "InvalidPayload"
    assert exception.get_attribute("title") == "demo.payloads.InvalidPayload"

    page.goto(f"{url}/deadletters/?{urlencode({'origin': made['origin'], 'view': 'rows'})}")
    assert page.locator("table.letters tbody tr[data-letter]").count() == 48
    sizes = page.evaluate(SCROLL, "table.letters")
    assert sizes["scroll"] <= sizes["client"], str(sizes)
    assert sizes["page"] <= 1440, sizes
    # The Status column is on screen, not behind a scroll.
    status = page.locator("table.letters thead th", has_text="Status").bounding_box()
    assert status and status["x"] + status["width"] <= 1440
    cells = page.evaluate(
        """() => Array.from(document.querySelectorAll("table.letters tbody tr[data-letter]"))
        .slice(0, 3).map((tr) => {
          const id = tr.querySelector("[data-col=message-id]");
          const exc = tr.querySelector("td.exception .name");
          return {id: id.textContent.trim(), idTitle: id.title, idWidth: id.offsetWidth,
                  exc: exc.textContent.trim(), excTitle: exc.title};
        })"""
    )
    for cell in cells:
        assert len(cell["idTitle"]) == 36 and cell["id"] != cell["idTitle"], cell
        assert cell["idTitle"].startswith(cell["id"].rstrip("…")), cell
        assert cell["idWidth"] < 160, cell
        assert cell["exc"] == "InvalidPayload", cell
        assert cell["excTitle"] == "demo.payloads.InvalidPayload", cell


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_requeue_all_is_the_primary_action_and_the_dangerous_ones_stand_apart(page, seeded):
    url, made = seeded
    page.goto(f"{url}/deadletters/?{urlencode({'origin': made['origin']})}")
    main = page.locator("main").bounding_box()
    assert main
    requeue = page.get_by_role("button", name="Requeue all matching")
    assert "btn-primary" in (requeue.get_attribute("class") or "")
    # Its rate limit is chosen on the dry run it leads to, not here.
    assert page.locator("form.bulk input[name=rate_limit]").count() == 0
    zone = page.locator("details.danger-zone")
    assert zone.count() == 1
    assert "Danger zone" in zone.locator("summary").inner_text()
    zone.locator("summary").click()
    for name in ("Discard all matching", "Purge all matching"):
        button = zone.get_by_role("button", name=name)
        assert "btn-danger" in (button.get_attribute("class") or "")
        box = button.bounding_box()
        assert box and box["width"] < 300, (name, box)
    # No full-width button on the page.
    wide = page.evaluate(
        """(limit) => Array.from(document.querySelectorAll("main button, main .btn"))
        .filter((b) => b.offsetWidth > limit).map((b) => b.textContent.trim())""",
        main["width"] / 2,
    )
    assert wide == [], wide
    # The per-group requeue is compact: one small button.
    group = page.locator("table.groups tbody tr[data-group] form.group-requeue").first
    box = group.bounding_box()
    assert box and box["height"] < 70 and box["width"] < 140, box


def local_filter(page, field: str, value: str) -> dict[str, list[str]]:
    page.fill(f"input[name={field}], input[data-name={field}]", value)
    page.get_by_role("button", name="Filter").click()
    page.wait_for_load_state()
    return parse_qs(urlsplit(page.url).query)


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_time_filters_take_the_local_time_the_tables_show(browser, seeded):
    url, made = seeded
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, timezone_id="Asia/Kolkata"
    )
    try:
        page = log_in(context, url, made["admin"])
        page.goto(f"{url}/deadletters/")
        since = page.locator("input[data-local-time]").first
        assert since.get_attribute("type") == "datetime-local"
        assert "2026-01-01T00:00" not in (since.get_attribute("placeholder") or "")
        note = page.locator(".local-time-note")
        assert note.count() == 1 and "UTC+05:30" in note.inner_text(), note.all_inner_texts()
        query = local_filter(page, "since", "2026-12-06T10:00")
        assert query["since"] == ["2026-12-06T04:30:00Z"], query
        shown = page.locator("input[data-local-time]").first
        assert shown.input_value() == "2026-12-06T10:00"

        page.goto(f"{url}/audit/")
        labels = page.locator("form.audit-filters label").all_inner_texts()
        assert not [t for t in labels if "UTC" in t], labels
        assert page.locator(".local-time-note").count() == 1
        query = local_filter(page, "from", "2026-12-06T10:00")
        assert query["from"] == ["2026-12-06T04:30:00Z"], query
        assert page.locator("input[data-local-time]").first.input_value() == "2026-12-06T10:00"
        # The next page and the CSV export keep the same moment.
        csv = page.locator("a[data-role=csv]").get_attribute("href") or ""
        assert parse_qs(urlsplit(csv).query)["from"][0].startswith("2026-12-06T04:30")
    finally:
        context.close()


@pytest.mark.browser
def test_audit_rows_stay_compact_on_a_phone(browser, seeded):
    url, made = seeded
    context = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = log_in(context, url, made["admin"])
        page.goto(f"{url}/audit/?{urlencode({'user': made['who']})}")
        rows = page.locator("#audit-rows tbody tr")
        assert rows.count() == 3
        heights = page.evaluate(
            """() => Array.from(document.querySelectorAll("#audit-rows tbody tr"))
            .map((tr) => tr.getBoundingClientRect().height)"""
        )
        assert max(heights) <= 110, heights
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390
        scroll = page.evaluate(
            """() => getComputedStyle(
              document.querySelector("#audit-rows").closest(".table-scroll")).overflowX"""
        )
        assert scroll in ("auto", "scroll")
        detail = page.locator("#audit-rows tbody tr", has_text="Done: 281").locator(".audit-detail")
        assert detail.locator("[title]").first.get_attribute("title") == made["detail"]
        # Expanding shows the whole text.
        detail.locator("summary").first.click()
        assert made["detail"].strip() in " ".join(detail.inner_text().split())
    finally:
        context.close()


@pytest.mark.browser
def test_audit_actions_and_targets_read_as_labels(page, seeded):
    url, made = seeded
    page.goto(f"{url}/audit/?{urlencode({'user': made['who']})}")
    actions = page.locator("#audit-rows tbody tr td:nth-child(3)").all_inner_texts()
    assert sorted(a.strip() for a in actions) == [
        "Celery task requeue",
        "Dead-letter requeue job",
        "Dead-letter requeue job finished",
    ], actions
    targets = page.locator("#audit-rows tbody tr td:nth-child(5)").all_inner_texts()
    assert "deadletters" not in [t.strip() for t in targets], targets
    assert "Dead-letter inbox" in [t.strip() for t in targets], targets
    inbox = page.locator("#audit-rows td [title=deadletters]").first
    assert inbox.inner_text() == "Dead-letter inbox"
    options = page.locator("select[name=action] option").all_inner_texts()
    assert not [o for o in options if o.startswith(("Deadletter ", "Deadletters "))], options
