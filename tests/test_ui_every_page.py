"""Debian's Chromium over every page (tests/support/pages.py) under real Daphne.

For each page: axe-core (vendored, tests/support/vendor) finds no serious or
critical violation: every rule in the light colour scheme, then, on the same page
switched to the dark one, the rules that depend on colours (the dark scheme only
gives the colour properties other values, static/css/app.css); at 390 x 844 the
page is no wider than the screen; Tab reaches the first navigation link and
the page's first primary action, each with a visible focus indicator. A
failure names the page and the rule, element or width at fault.

The data the pages show is seeded once, as a real demo has it: 80-character
names in a long vhost, a queue with consumers, metrics history, dead letters
with ``x-death`` headers, a long exception and a Celery task, a finished job
some of whose letters came back (tests/support/pages.py).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import amqp  # type: ignore[import-untyped]
import pytest

from tests.conftest import PYTHON, ROOT
from tests.support import deadletters as h
from tests.support import pages as p

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka]

OPERATOR = ("olga", "browser-pass-1")
ADMIN = ("ada", "a11y-admin-pass-1")
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1440, "height": 900}


@pytest.fixture(scope="module")
def seeded(dlq_daphne, rabbitmq_vhost) -> Iterator[dict[str, p.Page]]:
    """Every page of the list, with data as a real demo has it (tests/support/pages.py).

    The queue's consumers live here: the seed's process ends before the pages are visited.
    """
    _url, env = dlq_daphne
    try:
        made = subprocess.run(
            [PYTHON, "-c", p.SEED, rabbitmq_vhost, ADMIN[1]],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
            text=True,
            timeout=120,
        )
        targets = p.targets_from_json(made.stdout.strip().splitlines()[-1])
        connection = amqp.Connection("127.0.0.1:5672", "guest", "guest", virtual_host=targets.vhost)
        connection.connect()
        try:
            for tag in p.consumer_tags(2):
                connection.channel().basic_consume(targets.queue, consumer_tag=tag)
            yield {page.name: page for page in p.every_page(targets)}
        finally:
            connection.close()
        h.delete_group(targets.group)
        h.delete_topics(targets.topic)
    finally:
        with h.mgmt() as http:
            http.delete(f"/api/vhosts/{h.q(p.long_vhost(rabbitmq_vhost))}")


def log_in(context: Any, url: str, role: str) -> None:
    if role == p.ANONYMOUS:
        return
    username, password = ADMIN if role == p.ADMIN else OPERATOR
    page = context.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    page.close()


@pytest.fixture(scope="module")
def contexts(browser, dlq_daphne, seeded) -> Iterator[dict[tuple[str, bool], Any]]:
    """A logged-in browser context per role; ``(role, True)``: one that lets axe in.

    The pages' CSP (``script-src 'self'``) blocks the inline script tag that
    ``add_script_tag`` makes of axe's source, so the axe runs (and only they)
    use a context with ``bypass_csp``; width and keyboard run under the real CSP.
    """
    url, _env = dlq_daphne
    made: dict[tuple[str, bool], Any] = {}
    for role in (p.ANONYMOUS, p.OPERATOR, p.ADMIN):
        for for_axe in (False, True):
            context = browser.new_context(bypass_csp=for_axe)
            log_in(context, url, role)
            made[role, for_axe] = context
    yield made
    for context in made.values():
        context.close()


def visit(
    context: Any,
    url: str,
    page_info: p.Page,
    settle: bool = False,
    viewport: dict[str, int] | None = None,
    **media: str,
) -> Any:
    """Open a page (at ``viewport``); ``settle``: also wait for what its first fetches draw."""
    page = context.new_page()
    if viewport:
        page.set_viewport_size(viewport)
    if media:
        page.emulate_media(**media)
    response = page.goto(url + page_info.path)
    assert response is not None
    assert response.status == page_info.status, (
        f"{page_info.name} ({page_info.path}) answered {response.status}"
    )
    if page_info.submit:
        with page.expect_navigation():
            page.click(page_info.submit)
    if page_info.ready:
        page.wait_for_selector(page_info.ready)
    if settle:  # tiles, charts and tables drawn from fetches (a few seconds more a page)
        page.wait_for_load_state("networkidle")
    if page_info.press:
        page.click(page_info.press)
        page.wait_for_function(
            "() => document.querySelector('[data-tail]').dataset.state !== 'paused'"
        )
    return page


def describe(name: str, scheme: str, violations: list[dict[str, Any]]) -> str:
    lines = [f"{name} ({scheme}): {len(violations)} serious or critical axe violation(s)"]
    for v in violations:
        lines.append(f"  {v['id']} [{v['impact']}] {v['help']}")
        for node in v["nodes"][:5]:
            lines.append(f"    at {node['target']}")
        if len(v["nodes"]) > 5:
            lines.append(f"    and {len(v['nodes']) - 5} more")
    return "\n".join(lines)


@pytest.mark.parametrize("name", p.NAMES)
def test_axe_finds_no_serious_or_critical_violation(contexts, dlq_daphne, seeded, name: str):
    url, _env = dlq_daphne
    page_info = seeded[name]
    page = visit(contexts[page_info.role, True], url, page_info, color_scheme="light")
    try:
        light = p.axe_violations(page)
        p.switch_scheme(page, "dark")
        dark = p.axe_violations(page, p.COLOUR_RULES)
    finally:
        page.close()
    assert light == [], describe(name, "light", light)
    assert dark == [], describe(name, "dark", dark)


# -- a phone: 390 px wide ----------------------------------------------------------

# The elements that reach past the right edge, innermost first (their parents only widen with them).
OVERFLOW = """(width) => {
  const past = [...document.body.querySelectorAll("*")].filter(el => {
    const box = el.getBoundingClientRect();
    return box.width > 0 && box.right > width + 1;
  });
  const innermost = past.filter(el => !past.some(other => other !== el && el.contains(other)));
  const step = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + (el.classList.length ? "." + [...el.classList].join(".") : "");
  // At most four from each part of the page (header, main ...), so one part cannot hide another.
  const region = el => [...document.body.children].find(top => top.contains(el));
  const shown = innermost.filter((el, i) =>
    innermost.slice(0, i).filter(other => region(other) === region(el)).length < 4);
  return shown.map(el => {
    const path = [];
    for (let at = el; at && at !== document.body && path.length < 4; at = at.parentElement) {
      path.unshift(step(at));
    }
    const text = (el.textContent || "").trim().slice(0, 30);
    return `${path.join(" > ")} "${text}" right=${Math.round(el.getBoundingClientRect().right)}`;
  });
}"""


@pytest.mark.parametrize("name", p.NAMES)
def test_no_page_is_wider_than_a_phone(contexts, dlq_daphne, seeded, name: str):
    url, _env = dlq_daphne
    page_info = seeded[name]
    # Opened at the phone's width, as a phone opens it: charts are drawn that wide.
    settle = not page_info.own_layout  # Swagger UI and Django's admin draw nothing later
    page = visit(contexts[page_info.role, False], url, page_info, settle=settle, viewport=PHONE)
    try:
        width = page.evaluate("document.documentElement.scrollWidth")
        culprits = page.evaluate(OVERFLOW, PHONE["width"]) if width > PHONE["width"] else []
    finally:
        page.close()
    assert width <= PHONE["width"], (
        f"{name} ({page_info.path}) is {width} px wide at 390 px; past the edge: {culprits}"
    )


# -- keyboard ----------------------------------------------------------------------

# The focused element: is it the first navigation link, the first primary action; its focus ring.
FOCUS = """() => {
  const visible = el => el && el.getClientRects().length > 0 && !el.closest("[hidden]");
  const nav = [...document.querySelectorAll("nav a[href]")].find(visible) || null;
  const main = document.querySelector("main") || document.body;
  const primary = [...main.querySelectorAll(".btn-primary")].find(visible)
    || [...main.querySelectorAll("button, input[type=submit], a.btn")].find(visible) || null;
  const el = document.activeElement;
  const style = el ? getComputedStyle(el) : null;
  const ring = !!style && ((style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0)
    || style.boxShadow !== "none");
  return {
    nav: nav ? nav.textContent.trim() : null,
    primary: primary ? (primary.textContent || primary.value || "").trim() : null,
    isNav: !!nav && el === nav, isPrimary: !!primary && el === primary, ring,
  };
}"""
MAX_TABS = 400


@pytest.mark.parametrize("name", p.NAMES)
def test_tab_reaches_the_navigation_and_the_first_action_with_a_visible_focus(
    contexts, dlq_daphne, seeded, name: str
):
    url, _env = dlq_daphne
    page_info = seeded[name]
    page = visit(contexts[page_info.role, False], url, page_info)
    try:
        page.set_viewport_size(LAPTOP)
        first = page.evaluate(FOCUS)
        # Only what the page has: a login page has no navigation link to wait for.
        wanted = {key: first[key] for key in ("nav", "primary") if first[key] is not None}
        reached: dict[str, dict[str, Any]] = {}
        for _ in range(MAX_TABS if wanted else 0):
            page.keyboard.press("Tab")
            now = page.evaluate(FOCUS)
            if now["isNav"]:
                reached.setdefault("nav", now)
            if now["isPrimary"]:
                reached.setdefault("primary", now)
            if reached.keys() >= wanted.keys():
                break
    finally:
        page.close()
    for key, label in wanted.items():
        assert key in reached, f"{name}: Tab never reached the {key} element {label!r}"
        assert reached[key]["ring"], (
            f"{name}: the {key} element {label!r} has no visible focus"
            " (its outline and box-shadow are none)"
        )
    if page_info.role != p.ANONYMOUS and not page_info.own_layout:
        assert first["nav"] is not None, f"{name}: no navigation link on the page"


def test_the_list_holds_every_page_a_user_can_reach(seeded):
    names = set(seeded)
    assert {"overview", "rabbitmq-queue", "kafka-messages", "deadletters-letter", "job"} <= names
    assert {"login", "not-found", "api-docs", "admin", "tail"} <= names
    assert len(names) == len(seeded) == len(p.NAMES)


# -- the screenshot script ----------------------------------------------------------

SHOT_PAGES = ("login", "deadletters-letter")  # one without the layout, one with


def test_the_screenshot_script_saves_pages_at_both_widths_in_both_themes(
    dlq_daphne, seeded, tmp_path
):
    url, env = dlq_daphne
    made = subprocess.run(
        [
            PYTHON, "scripts/screenshots.py", "--url", url, "--username", ADMIN[0],
            "--password", ADMIN[1], "--out", str(tmp_path), "--only", ",".join(SHOT_PAGES),
        ],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    wanted = {
        f"{name}-{width}-{theme}.png"
        for name in SHOT_PAGES
        for width in (1440, 390)
        for theme in ("light", "dark")
    }
    assert {path.name for path in tmp_path.iterdir()} == wanted, made.stdout
    assert {line.rsplit("/", 1)[-1] for line in made.stdout.split()} == wanted
    for path in tmp_path.iterdir():
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path
