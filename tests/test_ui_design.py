"""The design system in Debian's Chromium under real Daphne: layout, themes, dialogs, errors.

Every page shares base.html, app.css and layout.js; these tests check what they
give every page: a header of one height, a phone menu, readable badges in both
themes, a remembered theme, real confirmation dialogs, error pages inside the
layout, a favicon, and a logout that says so.
"""

from __future__ import annotations

import subprocess
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.conftest import PYTHON, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka]

RABBIT = "/rabbitmq/local-rabbitmq/"
KAFKA = "/clusters/local-kafka/kafka/"
PHONE = {"width": 390, "height": 844}

# The contrast ratio (WCAG 2) of an element's text against the colour behind
# it: its own background, else the first ancestor's that is not transparent.
CONTRAST = """el => {
  const parse = c => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const layers = [];
  for (let n = el; n; n = n.parentElement) {
    const bg = parse(getComputedStyle(n).backgroundColor);
    if (bg.a > 0) { layers.push(bg); if (bg.a >= 1) break; }
  }
  let base = {r: 255, g: 255, b: 255};
  for (const l of layers.reverse()) {
    base = {r: l.r * l.a + base.r * (1 - l.a), g: l.g * l.a + base.g * (1 - l.a),
            b: l.b * l.a + base.b * (1 - l.a)};
  }
  const fg = parse(getComputedStyle(el).color);
  const text = {r: fg.r * fg.a + base.r * (1 - fg.a), g: fg.g * fg.a + base.g * (1 - fg.a),
                b: fg.b * fg.a + base.b * (1 - fg.a)};
  const lum = c => {
    const f = v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b);
  };
  const a = lum(text), b = lum(base);
  return {ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05),
          color: getComputedStyle(el).color, background: JSON.stringify(base)};
}"""

# Badges and statuses as pages write them (templates, {% badge %}, ui.js).
SAMPLES = [
    '<span class="badge badge-ok">ok</span>',
    '<span class="badge badge-info">info</span>',
    '<span class="badge badge-warn">warn</span>',
    '<span class="badge badge-danger">danger</span>',
    '<span class="badge badge-muted">muted</span>',
    '<span class="status ok">healthy</span>',
    '<span class="status down">unavailable</span>',
    '<span class="status">not managed</span>',
    '<span class="status status-pending">pending</span>',
    '<span class="status status-requeued">requeued</span>',
    '<span class="status status-failed_again">failed_again</span>',
    '<span class="status status-requeue_failed">requeue_failed</span>',
    '<span class="status status-requeuing">requeuing</span>',
    '<span class="status status-discarded">discarded</span>',
    '<table><tr class="status-pending"><td class="status">pending</td></tr></table>',
]


def login(page: Any, base: str, username: str = "olga", password: str = "browser-pass-1") -> None:
    page.goto(base + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(base + "/")


@pytest.fixture
def page(browser, daphne_url):
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    login(page, daphne_url)
    yield page
    context.close()


def header_height(page: Any) -> float:
    script = "() => document.querySelector('body > header').getBoundingClientRect().height"
    return float(page.evaluate(script))


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_status_and_badge_text_is_readable_in_both_themes(browser, daphne_url, scheme):
    context = browser.new_context(color_scheme=scheme)
    page = context.new_page()
    login(page, daphne_url)
    page.wait_for_selector('.card [data-field="status"] .badge')
    page.evaluate(
        """samples => {
          const box = document.createElement('div');
          box.id = 'samples';
          for (const html of samples) {
            const t = document.createElement('template');
            t.innerHTML = html;
            box.append(t.content);
          }
          document.querySelector('main').append(box);
        }""",
        SAMPLES,
    )
    checked = page.locator('.card [data-field="status"] .badge, #samples .status, #samples .badge')
    assert checked.count() == len(SAMPLES) + 2  # two cards plus every sample
    for i in range(checked.count()):
        el = checked.nth(i)
        result = el.evaluate(CONTRAST)
        assert result["ratio"] >= 4.5, (el.evaluate("e => e.outerHTML"), scheme, result)
    context.close()


def test_the_header_has_one_height_on_every_page(page, daphne_url):
    heights = {}
    for path in ("/", RABBIT, KAFKA, "/jobs/"):
        page.goto(daphne_url + path)
        page.wait_for_load_state("load")
        heights[path] = header_height(page)
    assert len(set(heights.values())) == 1, heights
    # Just above the phone menu's breakpoint the whole navigation still fits in the header.
    for width in (1040, 1440):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(daphne_url + RABBIT)
        overflow = page.evaluate(
            """() => {
              const header = document.querySelector('body > header');
              return [...header.querySelectorAll('a, button')]
                .filter(el => el.offsetParent !== null)
                .map(el => el.getBoundingClientRect())
                .some(r => r.right > header.clientWidth || r.bottom > header.clientHeight);
            }"""
        )
        assert not overflow, width
        assert header_height(page) == heights["/"], width


def test_a_phone_gets_a_menu_button_and_no_page_wider_than_the_screen(browser, daphne_url):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    page.goto(daphne_url + "/login/")
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    login(page, daphne_url)
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    jobs = page.locator("#site-nav a", has_text="Jobs")
    assert not jobs.is_visible()
    menu = page.locator("button[aria-controls=site-nav]")
    assert menu.is_visible()
    assert menu.get_attribute("aria-expanded") == "false"
    menu.click()
    assert menu.get_attribute("aria-expanded") == "true"
    assert jobs.is_visible()
    box = jobs.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    logout = page.locator("body > header button", has_text="Log out")
    assert logout.is_visible()
    # Escape closes it and gives the focus back to the button.
    page.keyboard.press("Escape")
    assert menu.get_attribute("aria-expanded") == "false"
    assert not jobs.is_visible()
    assert page.evaluate("() => document.activeElement.getAttribute('aria-controls')") == "site-nav"
    # The keyboard opens it too.
    page.keyboard.press("Enter")
    assert jobs.is_visible()
    for path in (RABBIT, KAFKA, "/jobs/", "/no/such/page/"):
        page.goto(daphne_url + path)
        page.wait_for_load_state("load")
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert header_height(page) < 80, path
        assert page.locator("button[aria-controls=site-nav]").is_visible(), path
        # The header itself never pushes the page wider.
        header = page.evaluate("() => document.querySelector('body > header').scrollWidth")
        assert header <= 390, (path, header, width)
    context.close()


def test_the_current_section_is_marked_in_the_navigation(page, daphne_url):
    page.goto(daphne_url + RABBIT)
    current = page.locator("#site-nav a[aria-current=page]")
    assert current.count() == 1 and current.inner_text() == "RabbitMQ"
    page.goto(daphne_url + "/")
    assert page.locator("#site-nav a[aria-current=page]").inner_text() == "Overview"


def test_a_skip_link_leads_to_main(page, daphne_url):
    page.goto(daphne_url + "/")
    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    assert skip.get_attribute("href") == "#main" and skip.is_visible()
    assert page.locator("main#main").count() == 1


def test_the_theme_toggle_switches_and_is_remembered(page, daphne_url):
    page.goto(daphne_url + "/")
    background = "() => getComputedStyle(document.body).backgroundColor"
    before = page.evaluate(background)
    page.click("#theme-toggle")
    theme = page.evaluate("() => document.documentElement.dataset.theme")
    assert theme in ("light", "dark")
    after = page.evaluate(background)
    assert after != before
    page.reload()
    assert page.evaluate("() => document.documentElement.dataset.theme") == theme
    assert page.evaluate(background) == after
    page.click("#theme-toggle")
    assert page.evaluate(background) == before


def test_data_confirm_asks_in_a_dialog_and_cancel_does_not_submit(page, daphne_url):
    page.goto(daphne_url + "/")
    dialogs: list[str] = []

    def native(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", native)
    page.evaluate(
        """() => {
          const form = document.createElement('form');
          form.action = '/'; form.method = 'get';
          form.dataset.confirm = 'Requeue 281 letters?';
          form.dataset.confirmDanger = '';
          const input = document.createElement('input');
          input.type = 'hidden'; input.name = 'confirmed'; input.value = '1';
          const button = document.createElement('button');
          button.id = 'go'; button.textContent = 'Requeue';
          form.append(input, button);
          document.querySelector('main').append(form);
        }"""
    )
    page.click("#go")
    dialog = page.locator("dialog[open]")
    assert dialog.is_visible()
    assert "Requeue 281 letters?" in dialog.inner_text()
    assert page.evaluate("() => document.querySelector('dialog[open]').matches(':modal')")
    confirm = dialog.locator("button.btn-danger")
    assert confirm.count() == 1
    dialog.locator("button", has_text="Cancel").click()
    assert page.locator("dialog[open]").count() == 0
    assert "confirmed" not in page.url
    # Escape cancels too.
    page.click("#go")
    assert page.locator("dialog[open]").is_visible()
    page.keyboard.press("Escape")
    assert page.locator("dialog[open]").count() == 0
    assert "confirmed" not in page.url
    # Confirming submits the form.
    page.click("#go")
    with page.expect_navigation():
        page.locator("dialog[open] button.btn-danger").click()
    assert "confirmed=1" in page.url
    assert dialogs == []


def test_a_submit_button_with_data_confirm_asks_before_its_form_submits(page, daphne_url):
    page.goto(daphne_url + "/")
    page.evaluate(
        """() => {
          const form = document.createElement('form');
          form.action = '/'; form.method = 'get';
          const plain = document.createElement('button');
          plain.id = 'plain'; plain.name = 'which'; plain.value = 'plain'; plain.textContent = 'Go';
          const asking = document.createElement('button');
          asking.id = 'asking'; asking.name = 'which'; asking.value = 'asking';
          asking.textContent = 'Move 3 messages';
          asking.dataset.confirm = 'Move 3 messages?';
          form.append(plain, asking);
          document.querySelector('main').append(form);
        }"""
    )
    page.click("#asking")
    dialog = page.locator("dialog[open]")
    assert dialog.locator("p").inner_text() == "Move 3 messages?"
    # Not a danger: the confirm button is the primary one, named like the action.
    confirm = dialog.locator("button.btn-primary")
    assert confirm.inner_text() == "Move 3 messages"
    with page.expect_navigation():
        confirm.click()
    assert "which=asking" in page.url


def _in_layout_404(page: Any, base: str, path: str) -> None:
    response = page.goto(base + path)
    assert response is not None and response.status == 404, path
    assert page.locator("body > header #site-nav").count() == 1, path
    assert page.locator("main#main h1").inner_text() == "Not found", path
    back = page.locator("main#main a[href='/']")
    assert back.count() >= 1, path
    assert page.evaluate("() => getComputedStyle(document.body).fontFamily") != "", path
    assert page.locator("link[rel=stylesheet][href*='app.css']").count() == 1, path


def test_unknown_urls_missing_letters_and_jobs_get_the_404_in_the_layout(page, daphne_url):
    _in_layout_404(page, daphne_url, "/no/such/page/")
    _in_layout_404(page, daphne_url, "/deadletters/987654321/")
    _in_layout_404(page, daphne_url, "/jobs/987654321/")
    assert "987654321" in page.locator("main").inner_text()


@pytest.mark.parametrize("path", ["/api/", "/api/nope", "/api/no/such/thing"])
def test_the_api_answers_json_404(page, daphne_url, path):
    response = page.request.get(daphne_url + path)
    assert response.status == 404
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == "not_found"


def test_the_favicon_answers_and_no_page_asks_for_a_missing_file(page, daphne_url):
    response = page.request.get(daphne_url + "/favicon.ico")
    assert response.status == 200
    assert "svg" in response.headers["content-type"]
    missing: list[str] = []
    page.on("response", lambda r: missing.append(r.url) if r.status == 404 else None)
    page.goto(daphne_url + "/")
    page.wait_for_load_state("networkidle")
    assert missing == []
    icon = page.locator("link[rel=icon]")
    assert icon.count() == 1 and icon.get_attribute("type") == "image/svg+xml"


def test_logging_out_says_so(page, daphne_url):
    page.goto(daphne_url + "/")
    page.locator("body > header button", has_text="Log out").click()
    page.wait_for_url("**/login/**")
    notice = page.locator("main .notice")
    assert notice.inner_text() == "You have logged out."
    assert notice.get_attribute("role") == "status"
    # Once only: the next visit to the login page has no notice.
    page.reload()
    assert page.locator("main .notice").count() == 0


@pytest.fixture(scope="module")
def viewer_login(served_db) -> tuple[str, str]:
    env = {**served_db, "MQB_USER_PASSWORD": "viewer-pass-1"}
    subprocess.run(
        [PYTHON, "manage.py", "ensure_user", "vera", "--role", "viewer"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return "vera", "viewer-pass-1"


def test_a_403_for_a_role_is_in_the_layout_and_names_the_role(browser, daphne_url, viewer_login):
    context = browser.new_context()
    page = context.new_page()
    login(page, daphne_url, *viewer_login)
    response = page.goto(daphne_url + "/rabbitmq/local-rabbitmq/move?queue=x")
    assert response is not None and response.status == 403
    assert page.locator("body > header #site-nav").count() == 1
    main = page.locator("main#main")
    assert main.locator("h1").inner_text() == "Not allowed"
    assert "operator role" in main.inner_text()
    assert main.locator("a[href='/']").count() >= 1
    context.close()


def test_a_crash_on_a_page_gets_the_500_page_in_the_layout(rf):
    from django.contrib.auth.models import AnonymousUser

    from dashboard.core.api import server_error

    request = rf.get("/somewhere/")
    request.user = AnonymousUser()
    response = server_error(request)
    text = response.content.decode()
    assert response.status_code == 500
    assert "<h1>Something went wrong</h1>" in text and 'href="/"' in text
    assert "css/app.css" in text and 'id="main"' in text
    api = server_error(rf.get("/api/clusters"))
    assert api.status_code == 500 and api["Content-Type"].startswith("application/json")


# Every box a page's own stylesheet may colour (tables, fields, buttons, forms, sections),
# visible in main: its tag, its classes and the luminance of what is painted behind it
# (its own background over its ancestors', so a transparent box reads as the page behind it).
BACKGROUNDS = """() => {
  const parse = c => {
    const m = c.match(/rgba?\\(([^)]+)\\)/);
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
    return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1};
  };
  const painted = el => {
    const layers = [];
    for (let n = el; n; n = n.parentElement) {
      const bg = parse(getComputedStyle(n).backgroundColor);
      if (bg.a > 0) { layers.push(bg); if (bg.a >= 1) break; }
    }
    let base = {r: 255, g: 255, b: 255};
    for (const l of layers.reverse()) {
      base = {r: l.r * l.a + base.r * (1 - l.a), g: l.g * l.a + base.g * (1 - l.a),
              b: l.b * l.a + base.b * (1 - l.a)};
    }
    const f = v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(base.r) + 0.7152 * f(base.g) + 0.0722 * f(base.b);
  };
  const boxes = "table, th, td, input, select, textarea, button, form, fieldset, section, "
    + "article, pre, dl, p, li";
  return [...document.querySelectorAll("main")].flatMap(main => [...main.querySelectorAll(boxes)])
    .filter(el => el.getClientRects().length > 0)
    .filter(el => !["checkbox", "radio", "hidden"].includes(el.type))
    .map(el => ({
      tag: el.tagName.toLowerCase(),
      what: el.tagName.toLowerCase()
        + (el.className ? "." + String(el.className).split(" ").join(".") : ""),
      luminance: painted(el),
    }));
}"""


# A chart's axis text (drawn on its canvas) and legend text against the chart's background.
CHART_INK = """() => {
  const rgb = c => {
    const probe = document.createElement("i");
    probe.style.color = c;
    document.body.append(probe);
    const m = getComputedStyle(probe).color.match(/rgba?\\(([^)]+)\\)/);
    probe.remove();
    return m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number);
  };
  const lum = p => {
    const f = v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(p[0]) + 0.7152 * f(p[1]) + 0.0722 * f(p[2]);
  };
  const ratio = (a, b) => (Math.max(lum(a), lum(b)) + 0.05) / (Math.min(lum(a), lum(b)) + 0.05);
  return [...document.querySelectorAll("[data-metrics-chart]")].flatMap(el => {
    const behind = rgb(getComputedStyle(el).backgroundColor);
    return el.mqbChart.plots.flatMap(plot => plot.axes.map((axis, i) => ({
      axis: ratio(rgb(axis.stroke(plot, i)), behind),
      legend: ratio(rgb(getComputedStyle(plot.root.querySelector(".u-legend th")).color), behind),
    })));
  });
}"""


def test_no_area_stylesheet_paints_a_light_box_on_a_dark_page(browser, daphne_url, rabbitmq_vhost):
    from tests.support import deadletters as h
    from tests.support.rabbitmq import declare, delete_queue, unique

    queue = unique("ui-dark")
    declare(rabbitmq_vhost, queue)
    topic = h.create_topic(h.kafka_name("-dark"))
    query = urlencode({"vhost": rabbitmq_vhost, "name": queue})
    pages = {
        "rabbitmq queue": f"{RABBIT}queue?{query}",
        "rabbitmq queues": RABBIT,
        "kafka topic": f"{KAFKA}topics/{topic}",
        "kafka topics": f"{KAFKA}topics/",
        "dead-letter inbox": "/deadletters/",
        "dead-letter queues": "/deadletters/queues/",
        "metrics cluster": "/live/local-rabbitmq/",
        "metrics queue": f"/live/local-rabbitmq/entity?type=queue&{query}",
        "metrics consumers": "/consumers/",
        "jobs": "/jobs/",
    }
    context = browser.new_context(color_scheme="dark", viewport={"width": 1440, "height": 900})
    page = context.new_page()
    login(page, daphne_url)
    light: list[str] = []
    seen: dict[str, set[str]] = {}
    try:
        for name, path in pages.items():
            response = page.goto(daphne_url + path)
            assert response is not None and response.status == 200, (name, path)
            page.wait_for_load_state("load")
            tail = page.locator(".mqb-tail [data-role=toggle]")
            if tail.count():
                tail.click()  # the live tail's table shows once it runs
                page.wait_for_selector(".mqb-tail-table")
            if page.locator("[data-metrics-chart]").count():
                page.wait_for_selector("[data-metrics-chart] .mqb-chart-numbers > div")
                page.wait_for_selector("[data-metrics-chart] .uplot")
                for ink in page.evaluate(CHART_INK):
                    assert ink["axis"] >= 4.5 and ink["legend"] >= 4.5, (name, ink)
            boxes = page.evaluate(BACKGROUNDS)
            seen[name] = {box["tag"] for box in boxes}
            # Dark surfaces sit below a luminance of 0.06, the primary button at 0.18; white is 1.
            light += [
                f"{name}: {b['what']} ({b['luminance']:.2f})" for b in boxes if b["luminance"] > 0.2
            ]
    finally:
        context.close()
        delete_queue(rabbitmq_vhost, queue)
        h.delete_topics(topic)
    assert light == [], "\n".join(light)
    for group in ("rabbitmq", "kafka", "dead-letter", "metrics"):
        tags = set().union(*(tags for name, tags in seen.items() if name.startswith(group)))
        assert {"table", "input", "button"} <= tags, (group, sorted(tags))
