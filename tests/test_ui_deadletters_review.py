"""The dead-letter pages as they read in Chromium against Daphne: the inbox's sub-navigation
looks like the design system's controls on a laptop and a phone, its group counts add up
with scheduled letters, and the letter page's Requeue later form and its confirmation.

Letters are stored in the served database as the capture would store them.
"""

from __future__ import annotations

import uuid

import pytest

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


def log_in(browser, url: str, width: int):
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
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
