"""The dead-letter pages as they read in Chromium against Daphne: the inbox's sub-navigation
looks like the design system's controls on a laptop and a phone, its group counts add up
with scheduled letters, and the letter page's Requeue later form and its confirmation.

Letters are stored in the served database as the capture would store them.
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.conftest import PYTHON, ROOT
from tests.support.dry_run import open_dry_run
from tests.support.letter_page import SEED, letter_row, run_script

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]

REDIRECT = """
import json, sys
import django
django.setup()
from dashboard.core.clusters import sync_cluster_rows
from dashboard.models import OriginRedirect
spec = json.loads(sys.stdin.read())
row = OriginRedirect.objects.create(
    cluster=sync_cluster_rows()["test-rabbitmq"], vhost=spec["vhost"],
    match={"exchange": "", "routing_key": spec["old"]},
    target={"exchange": "", "routing_key": spec["new"]}, note="renamed")
print(json.dumps(row.pk))
"""

# Where each sub-navigation link is and how it is drawn.
SUB_NAV = """() => {
  const nav = document.querySelector(".page-head nav.sub-nav");
  const links = Array.from(nav.querySelectorAll("a"));
  return {
    page: document.documentElement.scrollWidth,
    width: window.innerWidth,
    links: links.map((a) => {
      const s = getComputedStyle(a), r = a.getBoundingClientRect();
      return {text: a.textContent.trim(), decoration: s.textDecorationLine,
              border: s.borderTopStyle, radius: parseFloat(s.borderTopLeftRadius),
              padLeft: parseFloat(s.paddingLeft), height: r.height,
              left: r.left, right: r.right, top: r.top};
    }),
  };
}"""


ADMIN_PASSWORD = "review-admin-pass-7"


@pytest.fixture(scope="module")
def admin_page_user(dlq_daphne) -> str:
    _url, env = dlq_daphne
    username = f"review-{uuid.uuid4().hex[:6]}"
    subprocess.run(
        [PYTHON, "manage.py", "ensure_user", username, "--role", "admin"],
        cwd=ROOT,
        env={**env, "MQB_USER_PASSWORD": ADMIN_PASSWORD},
        check=True,
        capture_output=True,
        timeout=90,
    )
    return username


def log_in(browser, url: str, width: int, username: str = "olga"):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", ADMIN_PASSWORD if username != "olga" else "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    return page


@pytest.mark.parametrize("width", [1440, 390])
def test_the_inbox_sub_navigation_reads_as_buttons_and_fits(browser, dlq_daphne, width):
    url, _env = dlq_daphne
    page = log_in(browser, url, width)
    page.goto(f"{url}/deadletters/")
    got = page.evaluate(SUB_NAV)
    assert [link["text"] for link in got["links"]] == [
        "Scheduled requeues",
        "Retry policies",
        "Redirects",
    ]
    for link in got["links"]:
        # Bordered, rounded, padded controls without link underlines, big enough to tap.
        assert link["decoration"] == "none", link
        assert link["border"] == "solid", link
        assert link["radius"] > 0, link
        assert link["padLeft"] >= 6, link
        assert link["height"] >= 32, link
        assert link["left"] >= 0 and link["right"] <= got["width"], link
    assert got["page"] <= width, got
    if width == 1440:
        # One row beside the heading.
        assert len({round(link["top"]) for link in got["links"]}) == 1, got
    page.context.close()


def test_a_group_counts_its_scheduled_letters(browser, dlq_daphne, rabbitmq_vhost):
    url, env = dlq_daphne
    queue, fingerprint = f"review-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:16]
    rows = [
        letter_row(queue, f"{queue}.dlq", b"{}", vhost=rabbitmq_vhost, fingerprint=fingerprint)
        for _ in range(3)
    ]
    ids = run_script(env, SEED, {"letters": rows})
    run_script(env, SEED, {"status": [[ids[0], "scheduled"], [ids[1], "scheduled"]]})
    page = log_in(browser, url, 1440)
    page.goto(f"{url}/deadletters/?origin={queue}")
    heads = [" ".join(h.split()) for h in page.locator("table.groups thead th").all_inner_texts()]
    assert "Scheduled" in heads, heads
    row = page.locator("table.groups tbody tr[data-group]")
    assert row.locator("[data-col=count]").inner_text() == "3"
    assert row.locator("[data-part=pending]").inner_text() == "1"
    assert row.locator("[data-part=scheduled]").inner_text() == "2"
    page.context.close()


@pytest.mark.parametrize("width", [1440, 390])
def test_requeue_later_lines_each_choice_up_with_its_fields_and_names_the_target(
    browser, dlq_daphne, rabbitmq_vhost, width
):
    url, env = dlq_daphne
    old, new = f"review-old-{uuid.uuid4().hex[:8]}", f"review-new-{uuid.uuid4().hex[:8]}"
    [letter_id] = run_script(
        env, SEED, {"letters": [letter_row(old, f"{old}.dlq", b"{}", vhost=rabbitmq_vhost)]}
    )
    redirect_id = run_script(env, REDIRECT, {"vhost": rabbitmq_vhost, "old": old, "new": new})
    page = log_in(browser, url, width)
    page.goto(f"{url}/deadletters/{letter_id}/")
    form = page.locator("#requeue-later-form")
    after = form.locator("input[name=when][value=delay]").bounding_box()
    amount = form.locator("input[name=amount]").bounding_box()
    at = form.locator("input[name=when][value=at]").bounding_box()
    when = form.locator("input[name=at]").bounding_box()
    assert after and amount and at and when
    # Each radio sits on the line of the fields it chooses (vertically within them).
    assert amount["y"] <= after["y"] + after["height"] / 2 <= amount["y"] + amount["height"]
    assert when["y"] <= at["y"] + at["height"] / 2 <= when["y"] + when["height"]
    assert after["x"] < amount["x"] and at["x"] < when["x"]
    assert page.evaluate("document.documentElement.scrollWidth") <= width

    form.locator("button[type=submit]").click()
    question = page.locator("dialog[open] #confirm-dialog-text").inner_text()
    assert f"to (default) / {new} (redirect #{redirect_id})" in question
    assert old not in question
    page.context.close()


POLICY = """
import json, sys
import django
django.setup()
from dashboard.core.clusters import sync_cluster_rows
from dashboard.models import RetryPolicy
spec = json.loads(sys.stdin.read())
row = RetryPolicy.objects.create(
    name=spec["name"], cluster=sync_cluster_rows()["test-rabbitmq"],
    match_dlq="review-user-events-dlq", dry_run=True)
print(json.dumps(row.pk))
"""


def test_a_rules_matches_read_whole_words_and_its_numbers_read_as_typed(
    browser, dlq_daphne, admin_page_user
):
    url, env = dlq_daphne
    name = f"review rule {uuid.uuid4().hex[:6]}"
    policy_id = run_script(env, POLICY, {"name": name})
    page = log_in(browser, url, 1440, admin_page_user)
    page.goto(f"{url}/deadletters/policies/")
    row = page.locator(f"table.policies-table tbody tr:has-text('{name}')")
    # The cluster's slug on one line (not cut letter by letter), the table without a scroll.
    cluster = row.locator(".match-list dd").first
    line = page.evaluate("parseFloat(getComputedStyle(document.body).lineHeight) || 24")
    box = cluster.bounding_box()
    assert cluster.inner_text() == "test-rabbitmq"
    assert box and box["height"] < 1.6 * line, (box, line)
    scroll = page.evaluate(
        "() => { const b = document.querySelector('.policies .table-scroll');"
        " return [b.scrollWidth, b.clientWidth]; }"
    )
    assert scroll[0] <= scroll[1], scroll
    page.goto(f"{url}/deadletters/policies/{policy_id}/")
    values = {
        n: page.locator(f"input[name={n}]").input_value()
        for n in ("delay_seconds", "factor", "cap_seconds", "jitter")
    }
    assert values == {"delay_seconds": "60", "factor": "2", "cap_seconds": "3600", "jitter": "0.1"}
    page.context.close()


# Each sub-page: its way back (above the heading) and how wide its content is.
LAYOUT = """() => {
  const back = document.querySelector("main .back-link a");
  const head = document.querySelector("main .page-head");
  const first = document.querySelector("main .page-head").parentElement;
  const here = document.querySelector("main .page-head .sub-nav a[aria-current=page]");
  return {back: back ? back.textContent.trim() : null,
          current: here ? here.textContent.trim() : null,
          above: !!back &&
            back.getBoundingClientRect().bottom <= head.getBoundingClientRect().top,
          width: Math.round(first.getBoundingClientRect().width)};
}"""


def test_the_dead_letter_sub_pages_have_one_way_back_and_the_inbox_width(
    browser, dlq_daphne, admin_page_user
):
    url, _env = dlq_daphne
    page = log_in(browser, url, 1440, admin_page_user)
    page.goto(f"{url}/deadletters/")
    inbox = page.evaluate(LAYOUT)
    pages = {
        "/deadletters/schedules/": ("← Dead letters", True),
        "/deadletters/policies/": ("← Dead letters", True),
        "/deadletters/redirects/": ("← Dead letters", True),
        "/deadletters/policies/new": ("← Retry policies", False),
        "/deadletters/redirects/new?cluster=test-rabbitmq": ("← Redirects", False),
    }
    for path, (back, wide) in pages.items():
        page.goto(url + path)
        got = page.evaluate(LAYOUT)
        assert got["back"] == back and got["above"], (path, got)
        if wide:
            assert got["width"] == inbox["width"], (path, got, inbox)
    # The section's sub-navigation beside each list's heading, the page it is on marked.
    current = {
        "/deadletters/schedules/": "Scheduled requeues",
        "/deadletters/policies/": "Retry policies",
        "/deadletters/redirects/": "Redirects",
    }
    for path, title in current.items():
        page.goto(url + path)
        assert page.evaluate(LAYOUT)["current"] == title, path
    page.context.close()


# Vertical gaps in the dry run's Confirm forms: heading to text, text to field, field to button.
CONFIRM_GAPS = """() => {
  const form = document.getElementById("requeue-now");
  const box = (el) => el.getBoundingClientRect();
  const h = box(form.querySelector("h3")), p = box(form.querySelector("p"));
  const rows = Array.from(form.querySelectorAll(".form-row")).map(box);
  return [p.top - h.bottom, rows[0].top - p.bottom, rows[1].top - rows[0].bottom];
}"""


def test_the_dry_runs_confirm_forms_are_compact_and_targets_read_whole_on_a_phone(
    browser, dlq_daphne, rabbitmq_vhost
):
    url, env = dlq_daphne
    queue, group = f"review-user-events-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex[:16]
    rows = [
        letter_row(queue, f"{queue}.dlq", b"{}", vhost=rabbitmq_vhost, fingerprint=group)
        for _ in range(2)
    ]
    run_script(env, SEED, {"letters": rows})
    page = log_in(browser, url, 390)
    page.goto(f"{url}/deadletters/?origin={queue}")
    open_dry_run(page, page.locator("form.group-requeue button"))
    gaps = page.evaluate(CONFIRM_GAPS)
    assert all(0 <= gap <= 16 for gap in gaps), gaps
    # The target's name is not cut into pieces narrower than a short word.
    target = page.locator("#preview-targets tbody tr td.mono").first.bounding_box()
    assert target and target["width"] >= 120, target
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.context.close()
