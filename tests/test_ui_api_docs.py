"""Debian's Chromium, headless: the API's docs page as a person meets it.

The link to ``/api/docs`` leads someone not logged in to the login page and
back (every other ``/api/`` path answers 401 JSON). axe-core over the page
is in tests/test_ui_every_page.py (``api-docs``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka]


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
