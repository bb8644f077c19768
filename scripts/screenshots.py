#!/usr/bin/env python3
"""Log in to a running dashboard and save every page at 1440 and 390 px, light and dark.

The pages are those of ``tests/support/pages.py`` (the list the every-page
browser tests check). The queue, exchange, topic, consumer group, dead letter
and job the detail pages show are found through the running dashboard's JSON
API: the demo's own (named with ``--prefix``, default ``$DEMO_PREFIX``) before
others on a shared broker, then the busiest; a page whose subject does not
exist there yet is left out and said so.
Each page is saved as ``<out>/<page>-<width>-<theme>.png`` (the whole page,
not only the screen) and the files are printed, one a line. A page that cannot
be shot (it never draws, its button is missing) is said so on a ``#`` line and
the others are still shot; the exit status is then 1.

Defaults match ``make demo``: http://127.0.0.1:8000, the login ``demo-admin``
(an admin sees every page) and the password in ``var/demo-password``. Chromium
is Debian's (``chromium`` on the PATH), driven by Playwright.

    make screenshots
    .venv/bin/python scripts/screenshots.py --url http://127.0.0.1:8000 --only overview,jobs
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
WIDTHS = {1440: 900, 390: 844}
THEMES = ("light", "dark")


def options(argv: list[str] | None = None) -> argparse.Namespace:
    state = Path(os.environ.get("MQB_STATE_DIR", ROOT / "var"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("MQB_SCREENSHOTS_URL", ""))
    parser.add_argument("--username", default=os.environ.get("MQB_SCREENSHOTS_USER", "demo-admin"))
    parser.add_argument("--password", default=os.environ.get("MQB_SCREENSHOTS_PASSWORD", ""))
    parser.add_argument("--password-file", default=str(state / "demo-password"))
    parser.add_argument("--out", default=str(ROOT / "var" / "screenshots"))
    parser.add_argument("--only", default="", help="comma-separated page names (default: all)")
    parser.add_argument(
        "--prefix",
        default=os.environ.get("DEMO_PREFIX", ""),
        help="the demo's name prefix: its queue, topic and group are shown (env DEMO_PREFIX)",
    )
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args(argv)
    if not args.url:
        bind = os.environ.get("MQB_BIND", "127.0.0.1")
        args.url = f"http://{bind}:{os.environ.get('MQB_PORT', '8000')}"
    args.url = args.url.rstrip("/")
    if not args.password:
        try:
            args.password = Path(args.password_file).read_text().strip()
        except OSError:
            parser.error(f"no --password, MQB_SCREENSHOTS_PASSWORD or {args.password_file}")
    return args


def setup_django() -> None:
    """The page list is built from the dashboard's URL names: load its settings."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    import django

    django.setup()


def get_json(context: Any, url: str) -> Any:
    response = context.request.get(url)
    return response.json() if response.ok else None


def first(items: list[dict[str, Any]] | None, prefer: Any = None) -> dict[str, Any] | None:
    """The first item ``prefer`` likes, else the first item, else None."""
    items = items or []
    return next((i for i in items if prefer and prefer(i)), items[0] if items else None)


def pick(
    items: list[dict[str, Any]] | None,
    name_of: Callable[[dict[str, Any]], str],
    prefix: str = "",
    busy: Callable[[dict[str, Any]], tuple[float, ...]] = lambda _item: (),
) -> dict[str, Any] | None:
    """The demo's own item (its name starts with ``prefix``), then the busiest, then the first.

    ``busy`` gives an item's numbers, compared in order, the larger the better.
    """
    ranked = sorted(
        enumerate(items or []),
        key=lambda pair: (
            bool(prefix) and not name_of(pair[1]).startswith(prefix),
            tuple(-number for number in busy(pair[1])),
            pair[0],
        ),
    )
    return ranked[0][1] if ranked else None


def listing(context: Any, url: str, key: str, contains: str, prefix: str) -> list[dict[str, Any]]:
    """The ``key`` rows of a list API, those named with ``prefix`` if there are any."""
    separator = "&" if "?" in url else "?"
    if prefix:
        mine = (get_json(context, f"{url}{separator}{contains}={quote(prefix)}") or {}).get(key)
        if mine:
            return list(mine)
    return list((get_json(context, url) or {}).get(key) or [])


def discover(context: Any, url: str, prefix: str = "") -> tuple[Any, set[str]]:
    """The targets found in the running dashboard, and the names of those not found.

    On a shared broker the demo's own queue, topic and group (named with
    ``prefix``) come first, then the busiest: leftovers of other runs are
    often empty.
    """
    from tests.support.pages import PLACEHOLDER

    found: dict[str, Any] = {}
    clusters = (get_json(context, f"{url}/api/clusters/health") or {}).get("clusters", [])
    rabbit = first([c for c in clusters if c.get("kind") == "rabbitmq"])
    kafka = first([c for c in clusters if c.get("kind") == "kafka"])
    if rabbit:
        slug = found["rabbitmq"] = rabbit["slug"]
        api = f"{url}/api/clusters/{slug}/rabbitmq"
        queue = pick(
            listing(context, f"{api}/queues?stats=1&page_size=500", "items", "name", prefix),
            lambda q: q["name"],
            prefix,
            lambda q: (
                bool(q.get("dead_letter_exchange")),
                (q.get("consumers") or 0) > 0,
                q.get("messages") or 0,
                q.get("consumers") or 0,
            ),
        )
        if queue:
            found.update(vhost=queue["vhost"], queue=queue["name"])
        exchanges = listing(context, f"{api}/exchanges?page_size=500", "items", "name", prefix)
        named = [x for x in exchanges if x["name"] and not x["name"].startswith("amq.")]
        vhost = queue["vhost"] if queue else None
        exchange = pick(named, lambda x: x["name"], prefix, lambda x: (x["vhost"] == vhost,))
        if exchange:
            found["exchange"] = exchange["name"]
            found.setdefault("vhost", exchange["vhost"])
    if kafka:
        slug = found["kafka"] = kafka["slug"]
        api = f"{url}/api/clusters/{slug}/kafka"
        topics = listing(context, f"{api}/topics", "topics", "q", prefix)
        topic = pick(
            [t for t in topics if not t.get("internal")],
            lambda t: t["name"],
            prefix,
            lambda t: (t.get("messages") or 0,),
        )
        if topic:
            found["topic"] = topic["name"]
        group = pick(
            listing(context, f"{api}/groups", "groups", "q", prefix),
            lambda g: g["group_id"],
            prefix,
            lambda g: (
                bool(g.get("has_commits")),
                g.get("members") or 0,
                g.get("committed_partitions") or 0,
            ),
        )
        if group:
            found["group"] = group["group_id"]
    letter = first((get_json(context, f"{url}/api/deadletters/letters") or {}).get("items"))
    if letter:
        found["letter"] = letter["id"]
    job = first(
        (get_json(context, f"{url}/api/jobs") or {}).get("jobs"),
        lambda j: j.get("state") == "done",
    )
    if job:
        found["job"] = job["id"]
    schedule = first((get_json(context, f"{url}/api/deadletters/schedules") or {}).get("schedules"))
    if schedule:
        found["schedule"] = schedule["id"]
    missing = {f.name for f in fields(PLACEHOLDER)} - set(found)
    return replace(PLACEHOLDER, **found), missing


def needs(name: str) -> set[str]:
    """The targets a page's path is made of: those that change it when they change."""
    from tests.support.pages import PLACEHOLDER, every_page

    base = {p.name: p.path for p in every_page(PLACEHOLDER)}
    wanted = set()
    for field in fields(PLACEHOLDER):
        other: Any = 2 if field.type in ("int", int) else "other"
        changed = {p.name: p.path for p in every_page(replace(PLACEHOLDER, **{field.name: other}))}
        if changed.get(name) != base.get(name):
            wanted.add(field.name)
    return wanted


def log_in(page: Any, url: str, username: str, password: str) -> None:
    page.goto(f"{url}/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{url}/", timeout=15_000)


def shoot(page: Any, url: str, page_info: Any, out: Path) -> list[Path]:
    saved = []
    for theme in THEMES:
        page.emulate_media(color_scheme=theme)
        for width, height in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": height})
            response = page.goto(url + page_info.path)
            if response is not None and response.status != page_info.status:
                print(
                    f"# {page_info.name}-{width}-{theme}: answered {response.status},"
                    f" expected {page_info.status}"
                )
            if page_info.ready:
                page.wait_for_selector(page_info.ready, timeout=20_000)
            # Tiles, charts and tables drawn from the page's first fetches.
            page.wait_for_load_state("networkidle", timeout=20_000)
            if page_info.press:
                page.click(page_info.press)
            # From the top: a press scrolls, and sticky headers would be drawn where it left them.
            page.evaluate("window.scrollTo(0, 0)")
            path = out / f"{page_info.name}-{width}-{theme}.png"
            page.screenshot(path=str(path), full_page=True)
            saved.append(path)
    return saved


def shoot_each(
    pages: list[Any], shoot_one: Callable[[Any], list[Path]], errors: type[Exception]
) -> tuple[list[Path], int]:
    """Shoot every page; one that fails with ``errors`` is said so and the rest go on."""
    saved: list[Path] = []
    failed = 0
    for page_info in pages:
        try:
            saved += shoot_one(page_info)
        except errors as exc:
            failed += 1
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            print(f"# {page_info.name}: failed: {reason}")
    return saved, failed


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    setup_django()
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    from tests.support.pages import ANONYMOUS, every_page

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = {n for n in args.only.split(",") if n}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        anonymous = browser.new_context()
        context = browser.new_context()
        page = context.new_page()
        log_in(page, args.url, args.username, args.password)
        targets, missing = discover(context, args.url, args.prefix)
        wanted = []
        for page_info in every_page(targets):
            if only and page_info.name not in only:
                continue
            lacking = needs(page_info.name) & missing
            if lacking:
                print(f"# {page_info.name}: left out, none found: {', '.join(sorted(lacking))}")
                continue
            wanted.append(page_info)

        def shoot_one(page_info: Any) -> list[Path]:
            tab = anonymous.new_page() if page_info.role == ANONYMOUS else page
            return shoot(tab, args.url, page_info, out)

        saved, failed = shoot_each(wanted, shoot_one, PlaywrightError)
        browser.close()
    for path in saved:
        print(path)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
