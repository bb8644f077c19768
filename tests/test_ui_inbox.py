"""The dead-letter inbox and DLQs pages as a user sees them, and the grouping behind them.

The unit tests check the failure normaliser (what makes two letters one
group). The database tests check a group's columns. The browser tests drive
Debian's Chromium against Daphne serving a database that holds dead letters
written here (so their reasons, statuses and long names are known), plus the
real DLQs page of the test RabbitMQ vhost.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from brokers.decode.fingerprint import class_name, fingerprint, normalise_message
from dashboard.core.display import NONE

# -- the normaliser ----------------------------------------------------------------


def test_a_qualified_and_a_bare_exception_class_are_one_group():
    assert class_name("demo.payloads.InvalidPayload") == "InvalidPayload"
    assert class_name("InvalidPayload") == "InvalidPayload"
    assert class_name("java.lang.IllegalStateException") == "IllegalStateException"
    assert class_name("") == ""

    def of(exception_class: str) -> str:
        return fingerprint(
            origin="rabbitmq:queue:celery-tasks|exchange:",
            reason="rejected",
            exception_class=exception_class,
            exception_message="amount must be positive",
        )

    assert of("InvalidPayload") == of("demo.payloads.InvalidPayload")
    assert of("InvalidPayload") != of("demo.payloads.MissingField")


def test_ids_that_follow_a_letter_normalise_to_one_message():
    shapes = {normalise_message(f"no stock record for SKU-X{n}") for n in ("6", "20", "27", "1234")}
    assert shapes == {"no stock record for SKU-X<n>"}
    assert normalise_message("item_42 of order A17") == normalise_message("item_7 of order A9")
    # Numbers on their own still normalise as before.
    assert normalise_message("after 3 tries, -5 left") == "after <n> tries, <n> left"


# -- the pages in Chromium ---------------------------------------------------------

SEED = """
import json, sys
import django
django.setup()
from brokers.decode.fingerprint import fingerprint
from dashboard.core.clusters import sync_cluster_rows
from dashboard.models import DeadLetter
clusters = sync_cluster_rows()
vhost, u = sys.argv[1], sys.argv[2]
rabbit_dlq, queue = f"acc.payments.settlements-{u}.dlq", f"celery-tasks-{u}"
kafka_dlq, topic = f"acc.payments-{u}.DLT", f"acc.payments-{u}"
made = []
def letter(i, cluster, dlq, exception_class, message, status, **origin):
    kind = "topic:" + origin["origin_topic"] if "origin_topic" in origin else (
        "queue:" + origin.get("origin_queue", "") + "|exchange:")
    row = DeadLetter.objects.create(
        cluster=clusters[cluster], vhost=vhost if cluster == "test-rabbitmq" else "", dlq=dlq,
        capture_key=f"seed-{u}-{i}", message_id=f"seed-{u}-{i}", reason="rejected",
        exception_class=exception_class, exception_message=message, status=status,
        last_error="connection refused" if status == "requeue_failed" else "",
        fingerprint=fingerprint(origin=f"{clusters[cluster].kind}:{kind}", reason="rejected",
                                exception_class=exception_class, exception_message=message),
        body=b"{}", **origin)
    made.append(row.pk)
i = 0
for cls, status in [("InvalidPayload", "pending"), ("InvalidPayload", "pending"),
                    ("demo.payloads.InvalidPayload", "requeue_failed"),
                    ("demo.payloads.InvalidPayload", "requeued"),
                    ("demo.payloads.InvalidPayload", "failed_again"),
                    ("demo.payloads.InvalidPayload", "discarded"),
                    ("demo.payloads.InvalidPayload", "requeuing")]:
    i += 1
    letter(i, "test-rabbitmq", rabbit_dlq, cls, "amount must be positive", status,
           origin_queue=queue)
for n in (6, 20, 27):
    i += 1
    letter(i, "test-rabbitmq", rabbit_dlq, "OutOfStock", f"no stock record for SKU-X{n}",
           "pending", origin_queue=queue)
i += 1
letter(i, "test-kafka", kafka_dlq, "demo.payloads.InvalidPayload", "amount must be positive",
       "pending", origin_topic=topic)
print(json.dumps({"rabbit_dlq": rabbit_dlq, "queue": queue, "kafka_dlq": kafka_dlq,
                  "topic": topic, "ids": made}))
"""

# True when every line break inside each element falls right after a separator or a space.
BREAKS = """(selector) => {
  const bad = [];
  for (const el of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    let previous = null;
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.length; i++) {
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (/\\s/.test(node.data[i])) {
          // A space (collapsed or not) is a place where a line may break.
          if (previous) previous.char = " ";
          continue;
        }
        if (!rect || !rect.width) continue;
        if (previous && rect.top > previous.top + previous.height / 2
            && !/[\\s./:_-]/.test(previous.char)) {
          bad.push(el.textContent.trim() + " breaks after '" + previous.char + "'");
        }
        previous = {top: rect.top, height: rect.height, char: node.data[i]};
      }
    }
  }
  return bad;
}"""


def login(page, url: str) -> None:
    page.goto(url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


@pytest.fixture(scope="module")
def seeded(dlq_daphne, rabbitmq_vhost):
    import json
    import subprocess
    import uuid

    from tests.conftest import PYTHON, ROOT

    url, env = dlq_daphne
    made = subprocess.run(
        [PYTHON, "-c", SEED, rabbitmq_vhost, uuid.uuid4().hex[:8]],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return url, json.loads(made.stdout.strip().splitlines()[-1])


@pytest.fixture
def page(browser, seeded):
    url, _ = seeded
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    login(page, url)
    yield page
    page.close()


def inbox(page, url: str, **params: str) -> None:
    from urllib.parse import urlencode

    page.goto(f"{url}/deadletters/?{urlencode(params)}")


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_statuses_are_labelled_badges_and_the_status_filter_lists_each_once(page, seeded):
    url, made = seeded
    inbox(page, url, dlq=made["rabbit_dlq"], view="rows")
    rows = page.locator("table.letters tbody tr[data-letter]")
    assert rows.count() == 10
    statuses = page.evaluate(
        """() => Array.from(document.querySelectorAll("table.letters tbody tr[data-letter]"))
        .map((tr) => {
          const badge = tr.querySelector(".badge[data-status]");
          const cells = Array.from(tr.cells).map((td) => td.textContent).join(" ");
          if (!badge) return {badge: null, cells};
          const style = getComputedStyle(badge);
          return {code: badge.dataset.status, text: badge.textContent, cells,
                  color: style.color, background: style.backgroundColor};
        })"""
    )
    labels = {s.get("code"): s.get("text") for s in statuses}
    assert labels == {
        "pending": "Pending",
        "requeue_failed": "Requeue failed",
        "requeued": "Requeued",
        "failed_again": "Failed again",
        "discarded": "Discarded",
        "requeuing": "Being requeued",
    }, statuses
    for s in statuses:
        assert s["color"] != s["background"], s
        assert "requeue_failed" not in s["cells"] and "failed_again" not in s["cells"]
    options = page.locator("select[name=status] option").all_inner_texts()
    assert len(options) == len(set(options)), options
    assert options.count("Being requeued") == 1
    assert not [o for o in options if "_" in o], options


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_same_failures_are_one_group_whose_columns_add_up(page, seeded):
    url, made = seeded
    inbox(page, url, dlq=made["rabbit_dlq"])
    # Seven letters of one failure (the class with and without its module) and three
    # of another (SKU-X6, SKU-X20, SKU-X27): two groups.
    assert page.locator("table.groups tbody tr[data-group]").count() == 2
    groups = page.evaluate(
        """() => Array.from(document.querySelectorAll("table.groups tbody tr[data-group]"))
        .map((tr) => ({
          exception: tr.querySelector("td.exception").textContent.trim(),
          count: Number(tr.querySelector("[data-col=count]").textContent.replace(/,/g, "")),
          parts: Array.from(tr.querySelectorAll("[data-part]"))
            .map((td) => Number(td.textContent.replace(/,/g, ""))),
        }))"""
    )
    classes = sorted(g["exception"].split(":")[0] for g in groups)
    assert classes == ["InvalidPayload", "OutOfStock"], groups
    assert len(groups) == 2, groups
    counts = sorted(g["count"] for g in groups)
    assert counts == [3, 7], groups
    for g in groups:
        assert len(g["parts"]) == 5 and sum(g["parts"]) == g["count"], g
    # A status no group shown has gets no column; the columns shown still add up.
    inbox(page, url, dlq=made["kafka_dlq"])
    heads = page.locator("table.groups thead th").all_inner_texts()
    assert "Requeue failed" not in heads and "Pending" in heads
    parts = page.locator("table.groups tbody tr [data-part]").all_inner_texts()
    count = page.locator("table.groups tbody tr [data-col=count]").inner_text()
    assert sum(int(p) for p in parts) == int(count) == 1
    # The letter keeps its full class (shown short, the full one on hover).
    inbox(page, url, dlq=made["rabbit_dlq"], view="rows", status="requeue_failed")
    shown = page.locator("table.letters tbody td.exception .name")
    assert shown.get_attribute("title") == "demo.payloads.InvalidPayload"
    assert shown.inner_text() == "InvalidPayload"


def check_layout(page, url: str, made: dict[str, Any], width: int) -> None:
    page.set_viewport_size({"width": width, "height": 844 if width < 600 else 900})
    for view in ("", "rows"):
        params = {"origin": made["topic"].rsplit("-", 1)[1]}
        if view:
            params["view"] = view
        inbox(page, url, **params)
        broken = page.evaluate(BREAKS, "table.dlq-table td.name, table.dlq-table .name")
        assert broken == [], f"at {width} px: {broken}"
        one_line = page.evaluate(
            """() => Array.from(document.querySelectorAll("table.dlq-table time"))
            .map((t) => t.getClientRects().length)"""
        )
        assert one_line and set(one_line) == {1}, f"at {width} px, lines per date: {one_line}"
        table = page.locator("table.dlq-table")
        heads = table.locator("thead th").all_inner_texts()
        assert "DLQ" in heads and "Vhost" in heads, heads
        assert page.locator(".table-scroll > table.table").count() == 1
        kafka = table.locator("tbody tr", has_text=made["kafka_dlq"])
        rabbit = table.locator("tbody tr", has_text=made["rabbit_dlq"]).first
        vhost_at = heads.index("Vhost")
        assert kafka.locator("td").nth(vhost_at).inner_text().strip() == NONE
        assert rabbit.locator("td").nth(vhost_at).inner_text().strip() != NONE
        scroll = page.evaluate(
            """() => getComputedStyle(document.querySelector(".table-scroll")).overflowX"""
        )
        assert scroll in ("auto", "scroll")
        fields = page.evaluate(
            """() => Array.from(document.querySelectorAll(
                 "form.form.inbox-filter input:not([type=hidden]), form.form.inbox-filter select"))
               .map((el) => Boolean(el.closest(".field")))"""
        )
        assert fields and all(fields), fields


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_names_never_break_mid_word_and_dates_stay_on_one_line(page, seeded):
    url, made = seeded
    check_layout(page, url, made, 1440)
    check_layout(page, url, made, 390)


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_dlq_and_origin_names_in_the_inbox_link_to_their_filter(page, seeded):
    url, made = seeded
    for view in ("", "rows"):
        inbox(page, url, dlq=made["kafka_dlq"], **({"view": view} if view else {}))
        row = page.locator("table.dlq-table tbody tr").first
        row.locator("[data-col=dlq] a").click()
        page.wait_for_load_state()
        assert page.input_value("input[name=dlq]") == made["kafka_dlq"]
        assert page.input_value("input[name=cluster]") == "test-kafka"
        row = page.locator("table.dlq-table tbody tr").first
        row.locator("[data-col=origin] a").click()
        page.wait_for_load_state()
        assert page.input_value("input[name=origin]") == made["topic"]
        assert page.locator("table.dlq-table tbody tr", has_text=made["kafka_dlq"]).count() == 1


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_the_dlqs_page_links_every_dlq_and_cluster(page, seeded, rabbitmq_vhost):
    import asyncio
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import parse_qs, urlsplit

    from tests.support import deadletters as h

    url, _ = seeded
    base = h.unique("uilinks")
    with ThreadPoolExecutor(1) as pool:
        _events, _work, dlq = pool.submit(
            asyncio.run, h.dead_letter_topology(rabbitmq_vhost, base)
        ).result()
    page.goto(f"{url}/deadletters/queues/")
    for cluster, name in (("test-rabbitmq", "Test RabbitMQ"), ("test-kafka", "Test Kafka")):
        link = page.locator(f"section[data-cluster={cluster}] h2 a.cluster-link")
        assert link.inner_text() == name
        answer = page.request.get(url + link.get_attribute("href"))
        assert answer.status == 200 and name in answer.text()
    rows = page.locator("table.dlq-table tbody tr[data-dlq]")
    assert rows.count() >= 1
    unlinked = page.evaluate(
        """() => Array.from(document.querySelectorAll("table.dlq-table tbody tr[data-dlq]"))
        .filter((tr) => !tr.querySelector("td[data-col=dlq] a[href*='/deadletters/?']"))
        .map((tr) => tr.dataset.dlq)"""
    )
    assert unlinked == []
    row = page.locator(f"section[data-cluster=test-rabbitmq] tr[data-dlq='{dlq}']")
    inbox_link = row.locator("a.dlq-link").get_attribute("href")
    assert parse_qs(urlsplit(inbox_link).query) == {"cluster": ["test-rabbitmq"], "dlq": [dlq]}
    row.locator("a.browse-link").click()
    page.wait_for_url("**/rabbitmq/test-rabbitmq/queue?*")
    assert parse_qs(urlsplit(page.url).query) == {"vhost": [rabbitmq_vhost], "name": [dlq]}
    page.go_back()
    page.locator(f"tr[data-dlq='{dlq}'] a.dlq-link").click()
    page.wait_for_url("**/deadletters/?*")
    assert page.input_value("input[name=dlq]") == dlq


@pytest.mark.browser
@pytest.mark.rabbitmq
def test_inbox_confirmations_are_data_confirm_never_window_confirm(page, seeded):
    url, made = seeded
    inbox(page, url, dlq=made["rabbit_dlq"], view="rows", status="pending")
    posted: list[str] = []

    def refuse(route) -> None:
        posted.append(route.request.url)
        route.fulfill(status=204)  # the page stays

    page.route("**/deadletters/discard", refuse)
    page.evaluate(
        "() => { window.__asked = []; window.confirm = (q) => { window.__asked.push(q); "
        "return false; }; }"
    )
    page.locator("#letters-form tbody input[name=ids]").first.check()
    page.locator("#letters-form button", has_text="Discard selected").click()
    # The page asks in its own dialog (or, without one, the form is sent): never window.confirm.
    deadline = time.monotonic() + 10
    while not (
        posted or page.locator("dialog[open]").count() or page.evaluate("() => window.__asked")
    ):
        assert time.monotonic() < deadline, "neither a dialog nor a request"
        page.wait_for_timeout(50)
    assert page.evaluate("() => window.__asked") == []
    buttons = page.locator("#letters-form button[type=submit]")
    assert buttons.count() >= 2
    for i in range(buttons.count()):
        button = buttons.nth(i)
        if button.get_attribute("id") == "requeue-selected":
            continue  # it asks nothing here: the dry run it leads to is its confirmation
        assert button.get_attribute("data-confirm"), button.inner_text()
