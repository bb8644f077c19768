"""Debian's Chromium, headless: the API's docs page (Swagger UI) under real Daphne and its CSP."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard.openapi import build_schema

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka]

METHODS = {"get", "post", "put", "patch", "delete"}


def operations() -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, item in build_schema()["paths"].items()
        for method in item
        if method in METHODS
    }


def log_in(page: Any, url: str) -> None:
    page.goto(url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def test_the_docs_page_lists_every_operation_without_a_csp_violation(browser, daphne_url):
    page = browser.new_page()
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    log_in(page, daphne_url)
    # Violations are also events of the document: catch them from the first byte.
    page.add_init_script(
        "window.__csp = [];"
        "document.addEventListener('securitypolicyviolation', e =>"
        " window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    page.goto(daphne_url + "/api/docs")
    page.wait_for_selector(".opblock", timeout=20_000)
    listed = {
        (
            block.locator(".opblock-summary-method").inner_text().strip(),
            block.locator(".opblock-summary-path").get_attribute("data-path"),
        )
        for block in page.locator(".opblock").all()
    }
    assert listed == operations()
    assert "mqboard API" in page.locator(".info .title").inner_text()
    violations = page.evaluate("window.__csp")
    assert violations == [], violations
    problems = [m for m in console if "Content Security Policy" in m or m.startswith("pageerror")]
    assert problems == [], problems
    page.close()
