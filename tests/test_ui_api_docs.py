"""Debian's Chromium, headless: the API's docs page as a person meets it.

The link to ``/api/docs`` leads someone not logged in to the login page and
back (every other ``/api/`` path answers 401 JSON); the page follows the dark
theme. axe-core over the page is in tests/test_ui_every_page.py (``api-docs``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka]

# The page's background and the first operation's method badge: colours, and luminances.
COLOURS = """() => {
  const rgb = text => (text.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const c = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * c(r) + 0.7152 * c(g) + 0.0722 * c(b);
  };
  // The first opaque background behind the operations; the canvas is white without one.
  const layers = [".swagger-ui", "body", "html"]
    .map(sel => getComputedStyle(document.querySelector(sel)).backgroundColor);
  const bg = layers.find(c => c !== "rgba(0, 0, 0, 0)" && c !== "transparent")
    || "rgb(255, 255, 255)";
  const text = getComputedStyle(document.querySelector(".opblock-summary-description")).color;
  return {bg, text, bgLum: lum(rgb(bg)), textLum: lum(rgb(text))};
}"""


def log_in_form(page: Any) -> None:
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")


def test_the_docs_link_leads_to_the_login_page_and_back(browser, daphne_url):
    context = browser.new_context()
    page = context.new_page()
    try:
        response = page.goto(daphne_url + "/api/docs")
        assert response is not None and response.status == 200
        at = urlsplit(page.url)
        assert at.path == "/login/", page.url
        assert parse_qs(at.query) == {"next": ["/api/docs"]}
        log_in_form(page)
        page.wait_for_url(daphne_url + "/api/docs")
        page.wait_for_selector(".opblock", timeout=20_000)
        # Other /api/ paths stay JSON for clients without a login.
        anonymous = browser.new_context()
        try:
            answer = anonymous.request.get(daphne_url + "/api/openapi.json")
            assert answer.status == 401
            assert answer.json()["code"] == "unauthenticated"
        finally:
            anonymous.close()
    finally:
        context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_docs_page_follows_the_colour_scheme(browser, daphne_url, scheme: str):
    context = browser.new_context(color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(daphne_url + "/login/")
        log_in_form(page)
        page.wait_for_url(daphne_url + "/")
        page.goto(daphne_url + "/api/docs")
        page.wait_for_selector(".opblock-summary-description", timeout=20_000)
        seen = page.evaluate(COLOURS)
        if scheme == "dark":
            assert seen["bgLum"] < 0.05 and seen["textLum"] > 0.5, seen
        else:
            assert seen["bgLum"] > 0.8 and seen["textLum"] < 0.2, seen
        # The header's toggle stores a choice that wins over the system's.
        other = "light" if scheme == "dark" else "dark"
        page.evaluate(f"localStorage.setItem('mqb-theme', '{other}')")
        page.reload()
        page.wait_for_selector(".opblock-summary-description", timeout=20_000)
        seen = page.evaluate(COLOURS)
        assert (seen["bgLum"] < 0.05) == (other == "dark"), seen
    finally:
        context.close()
