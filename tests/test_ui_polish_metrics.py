"""Debian's Chromium: the consumers page, the live metrics pages and the overview read well.

No collector runs here: the served database and Redis are seeded as the collector would
have left them (a queue's history, a cluster's latest sample, consumers, dead letters),
so every number on the pages is known in advance.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.support.metrics import base_env, run_django, unique

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.redis]

U = unique("polish")
QUEUE = f"mqb-polish-{U}-payments.settlements"  # history only, never declared on the broker
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}

SEED = """
import json, time
from datetime import UTC, datetime, timedelta
from brokers.base.metrics import ClusterSample, Point, queue_entity
from dashboard.core.clusters import sync_cluster_rows
from dashboard.metrics.redis_keys import key, sync_client
from dashboard.metrics.snapshot import encode_sample
from dashboard.models import Cluster, Consumer, DeadLetter, ThroughputSample

clusters = sync_cluster_rows()
rabbit = clusters["local-rabbitmq"]
now = time.time()
u = %(u)r
entity = queue_entity("/", %(queue)r)

def row(entity_type, name, at, **values):
    sample = ThroughputSample(cluster=rabbit, entity_type=entity_type, entity=name,
                              resolution="raw", time=datetime.fromtimestamp(at, UTC))
    for field, value in values.items():
        setattr(sample, field, value)
    return sample

def hourly(entity_type, name, at, **values):
    sample = row(entity_type, name, at, **values)
    sample.resolution = "hour"
    return sample

rows = [hourly("cluster", "local-rabbitmq", now - 3 * 3600, depth=10),
        hourly("queue", entity, now - 3 * 3600, depth=1, publish_rate=5.0)]
for i in range(60):
    at = now - 20 * 60 + i * 5
    rows.append(row("cluster", "local-rabbitmq", at, depth=10))
    rows.append(row("queue", entity, at, depth=i %% 2, ready=i %% 2, unacked=0,
                    publish_rate=(5.6 if i == 59 else 5.0), deliver_rate=5.0, ack_rate=5.0,
                    consumers=1))
ThroughputSample.objects.bulk_create(rows)

# The cluster's latest sample: deep queues with known, zero and unreported rates.
def deep(kind, depth, rate, consumers):
    name = queue_entity("/", f"mqb-polish-{u}-{kind}")
    return Point("queue", name, (depth, depth, 0, rate, rate, rate, consumers, None, None))

points = (deep("busy", 900000003, 1.2, 1), deep("idle", 900000002, 0.0, 1),
          deep("nostats", 900000001, None, 0))
totals = (2700000006, 2700000006, 0, 1.2, 1.2, 1.2, 2, None, None)
sample = ClusterSample("local-rabbitmq", "rabbitmq", datetime.now(UTC), totals, points, None, 0.1)
sync_client().set(key("latest", "local-rabbitmq"), encode_sample(sample, 5), ex=600)

# Consumers: a kombu consumer without a tag of its own ("None1"), a Celery worker on Redis.
celery, _ = Cluster.objects.update_or_create(
    slug="celery_127-0-0-1-6379-11",
    defaults={"kind": "redis", "name": "Celery broker redis://127.0.0.1:6379/11"})
when = datetime.now(UTC) - timedelta(minutes=3)
client = "127.0.0.1:49152 -> 127.0.0.1:5672"
Consumer.objects.create(
    cluster=rabbit, kind="amqp", identity=f"None1 on {client} (1)",
    source=queue_entity("/", f"mqb-polish-{u}-user-events.processing"), client=client,
    host="127.0.0.1", state="active", first_seen=when, last_seen=datetime.now(UTC),
    details={"tag": "None1", "channel": f"{client} (1)", "vhost": "/",
             "queue": f"mqb-polish-{u}-user-events.processing"})
Consumer.objects.create(
    cluster=celery, kind="celery", identity=f"celery@mqb-polish-{u}-worker",
    source=queue_entity("", f"mqb-polish-{u}-celery-tasks"), client="redis://127.0.0.1:6379/11",
    host=f"mqb-polish-{u}-worker", state="active", first_seen=when, last_seen=datetime.now(UTC),
    details={"queue": f"mqb-polish-{u}-celery-tasks", "broker": "redis://127.0.0.1:6379/11"})

for i in range(3):
    DeadLetter.objects.create(
        cluster=rabbit, vhost="/", dlq=f"mqb-polish-{u}.dlq", capture_key=f"polish:{u}:{i}",
        message_id=f"polish-{u}-{i}", origin_queue=f"mqb-polish-{u}", reason="rejected",
        body=b"{}", body_size=2, first_failed_at=datetime.now(UTC))
pending = DeadLetter.objects.filter(cluster=rabbit, status="pending").count()
print(json.dumps({"pending": pending}))
"""

# Every place where a cell's text wraps between two characters that are neither a space nor a
# separator (. / : _ -): a name or a word broken mid-word.
BREAKS = """(selector) => {
  const bad = [];
  for (const el of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
    let previous = null;
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (let i = 0; i < node.length; i++) {
        if (/\\s/.test(node.data[i])) { if (previous) previous.char = " "; continue; }
        const range = document.createRange();
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        const rect = range.getClientRects()[0];
        if (!rect || !rect.width) continue;
        if (previous && rect.top > previous.top + previous.height / 2
            && !/[\\s./:_-]/.test(previous.char)) {
          bad.push(el.textContent.trim().slice(0, 60) + " breaks after '" + previous.char + "'");
        }
        previous = { top: rect.top, height: rect.height, char: node.data[i] };
      }
    }
  }
  return bad;
}"""

# The tiles of a chart: their boxes, and every box drawn inside each (its text included).
TILES = """() => Array.from(document.querySelectorAll('.mqb-chart-numbers > div')).map((tile) => {
  const box = tile.getBoundingClientRect();
  const inner = [];
  const walker = document.createTreeWalker(tile, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) inner.push([r.left, r.top, r.right, r.bottom]);
  }
  return { field: tile.dataset.field, text: tile.innerText,
           box: [box.left, box.top, box.right, box.bottom], inner: inner };
})"""


def overlaps(a: list[float], b: list[float]) -> bool:
    return a[0] < b[2] - 0.5 and b[0] < a[2] - 0.5 and a[1] < b[3] - 0.5 and b[1] < a[3] - 0.5


@pytest.fixture(scope="module")
def seeded(served_db, daphne_url) -> dict[str, Any]:
    found: dict[str, Any] = run_django(base_env(served_db), SEED % {"u": U, "queue": QUEUE})
    return found


@pytest.fixture
def page(browser, daphne_url):
    page = browser.new_page()
    page.goto(daphne_url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(daphne_url + "/")
    yield page
    page.close()


def open_chart(page, daphne_url: str) -> None:
    query = urlencode({"type": "queue", "vhost": "/", "name": QUEUE})
    page.goto(f"{daphne_url}/live/local-rabbitmq/entity?{query}")
    page.wait_for_selector('[data-metrics-chart]:not([data-points="0"])', timeout=15_000)


# -- the consumers page -----------------------------------------------------------------


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["1440", "390"])
def test_consumer_tables_break_names_only_at_separators(page, daphne_url, seeded, size):
    page.set_viewport_size(size)
    page.goto(daphne_url + f"/consumers/?q=mqb-polish-{U}")
    page.wait_for_selector("#consumer-rows tbody tr[data-kind]")
    broken = page.evaluate(BREAKS, "main table th, main table td")
    # Only this test's rows: other tests in this process may have left consumers with
    # hostile names in the shared served database, in tables the search does not filter.
    broken = [b for b in broken if not b.startswith("mqb-test-") or f"mqb-polish-{U}" in b]
    assert broken == [], broken
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= size["width"], f"the page is {width} px wide"
    # One character per line made rows hundreds of pixels tall; a name that wraps at its
    # separators takes a few lines. (The page's own height depends on what else the shared
    # brokers and database hold, so each of this test's rows is measured instead: other tests
    # in this process leave consumers with names hundreds of characters long.)
    heights = page.evaluate(
        """(marker) => Array.from(document.querySelectorAll('main table tbody tr'))
             .filter((r) => r.textContent.includes(marker))
             .map((r) => r.getBoundingClientRect().height)""",
        f"mqb-polish-{U}",
    )
    assert len(heights) >= 2, heights
    assert max(heights) < 160, f"a row is {max(heights)} px tall"
    if size is PHONE:
        scrolls = page.evaluate(
            """() => Array.from(document.querySelectorAll('#consumer-rows')).map((t) => {
              const box = t.closest('.table-scroll');
              return box && getComputedStyle(box).overflowX === 'auto'
                && box.scrollWidth > box.clientWidth;
            })"""
        )
        assert scrolls == [True], "the table scrolls inside its box"


def test_consumer_names_and_clusters_read_as_words(page, daphne_url, seeded):
    page.goto(daphne_url + f"/consumers/?q=mqb-polish-{U}")
    table = page.locator("#consumer-rows")
    text = table.inner_text()
    assert "None" not in text, text
    assert "celery_" not in text, text
    amqp = table.locator('tr[data-kind="amqp"]')
    assert "(no tag) #1" in amqp.inner_text()
    celery = table.locator('tr[data-kind="celery"]')
    assert celery.locator("td").nth(1).inner_text() == "Celery on 127.0.0.1:6379/11", (
        celery.inner_text()
    )
    options = page.locator('select[name="cluster"] option').all_inner_texts()
    assert "Celery on 127.0.0.1:6379/11" in options or not any("celery_" in o for o in options)


def test_consumers_page_uses_the_shared_table_and_form(page, daphne_url, seeded):
    page.goto(daphne_url + "/consumers/")
    classes = page.evaluate(
        "() => Array.from(document.querySelectorAll('main table')).map((t) => t.className)"
    )
    assert classes and all("table" in c.split() for c in classes), classes
    form = page.locator("#consumers form")
    assert "form" in (form.get_attribute("class") or "").split()
    assert form.locator("label.field select[name=kind]").count() == 1
    assert form.locator("label.field input[name=q]").count() == 1
    page.goto(daphne_url + "/live/local-rabbitmq/")
    classes = page.evaluate(
        """() => Array.from(document.querySelectorAll('main section table:not(.u-legend)'))
          .map((t) => t.className)"""
    )
    assert classes and all("table" in c.split() for c in classes), classes


# -- metric tiles and charts --------------------------------------------------------------


@pytest.mark.parametrize("size", [LAPTOP, PHONE], ids=["1440", "390"])
def test_tiles_never_overlap_and_say_as_of_once(page, daphne_url, seeded, size):
    page.set_viewport_size(size)
    open_chart(page, daphne_url)
    page.wait_for_function(
        "() => document.querySelector('[data-field=\"depth\"] .value').textContent !== 'unknown'"
    )
    chart = page.locator("[data-metrics-chart]")
    assert chart.inner_text().count("as of") == 1, chart.inner_text()
    as_of = chart.locator('[data-role="as-of"]')
    assert as_of.locator("time.when").count() == 1
    tiles = page.evaluate(TILES)
    assert len(tiles) >= 5
    for tile in tiles:
        for r in tile["inner"]:
            assert tile["box"][0] - 0.5 <= r[0] and r[2] <= tile["box"][2] + 0.5, tile
    for i, a in enumerate(tiles):
        for b in tiles[i + 1 :]:
            assert not overlaps(a["box"], b["box"]), (a, b)
            for ra in a["inner"]:
                for rb in b["inner"]:
                    assert not overlaps(ra, rb), (a["text"], b["text"])


def x_ticks(page) -> list[list[str]]:
    found: list[list[str]] = page.evaluate(
        """() => document.querySelector('[data-metrics-chart]').mqbChart.plots
          .map((p) => (p.axes[0]._values || []).map(String))"""
    )
    return found


def test_time_axes_read_24_hour_local_time(page, daphne_url, seeded):
    open_chart(page, daphne_url)
    for ticks in x_ticks(page):
        assert ticks, "the time axis has ticks"
        for tick in ticks:
            assert re.fullmatch(r"\d\d:\d\d", tick), ticks
    page.click('.mqb-chart-ranges button[data-range="7d"]')
    page.wait_for_function(
        """() => { const c = document.querySelector('[data-metrics-chart]').mqbChart;
          return c.loaded && c.range === '7d' && c.plots.length; }"""
    )
    for ticks in x_ticks(page):
        assert ticks
        for tick in ticks:
            assert re.fullmatch(r"\d\d-\d\d( \d\d:\d\d)?", tick), ticks


def test_legends_show_the_last_values_while_nothing_is_hovered(page, daphne_url, seeded):
    open_chart(page, daphne_url)
    legends = page.evaluate(
        """() => Array.from(document.querySelectorAll('.u-legend')).map((l) =>
          Array.from(l.querySelectorAll('.u-series')).slice(1).map((s) =>
            [s.querySelector('.u-label').textContent, s.querySelector('.u-value').textContent]))"""
    )
    assert legends == [
        [["total", "1"], ["ready", "1"], ["unacked", "0"]],
        [["publish", "5.6/s"], ["deliver", "5/s"], ["ack", "5/s"]],
    ], legends


def test_deepest_queues_show_known_rates_one_way(page, daphne_url, seeded):
    page.goto(daphne_url + "/live/local-rabbitmq/")
    rows: dict[str, list[str]] = {}
    for kind in ("busy", "idle", "nostats"):
        row = page.locator("main section table tbody tr", has_text=f"mqb-polish-{U}-{kind}")
        rows[kind] = row.locator("td.num").all_inner_texts()[3:5]
    assert rows == {"busy": ["1.2/s", "1.2/s"], "idle": ["0/s", "0/s"], "nostats": ["0/s", "0/s"]}


# -- the overview ---------------------------------------------------------------------------


def test_overview_dead_letters_are_the_inboxs_pending_letters(page, daphne_url, seeded):
    page.goto(daphne_url + "/")
    card = page.locator('.card[data-cluster="local-rabbitmq"]')
    pending = card.locator('[data-field="pending_letters"]')
    link = pending.locator("a")
    assert link.get_attribute("href") == "/deadletters/?cluster=local-rabbitmq&status=pending"
    count = seeded["pending"]
    assert pending.inner_text().startswith(f"{count:,} pending"), pending.inner_text()
    labels = card.locator("dt").all_inner_texts()
    assert "Dead letters" in labels
    depth_label = labels[labels.index("Dead letters") + 1]
    assert depth_label in ("DLQ depth on the broker", "Last check"), labels
