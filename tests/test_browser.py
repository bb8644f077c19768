"""Debian's Chromium, headless, through login to the overview under real Daphne."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import PYTHON, ROOT

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka]


@pytest.fixture
def checked(served_db) -> None:
    """One round of the collector's health checks: the overview shows the last one."""
    subprocess.run(
        [PYTHON, "manage.py", "collect", "--once"], cwd=ROOT, env=served_db, check=True, timeout=60
    )


def test_it_logs_in_and_shows_both_clusters(browser, daphne_url, checked):
    page = browser.new_page()
    page.goto(daphne_url + "/")
    assert "/login/" in page.url
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_selector(".card")
    cards = page.locator(".card")
    assert cards.count() == 2
    healthy = page.locator('.card [data-field="status"] .badge.badge-ok[data-status="ok"]')
    assert healthy.count() == 2
    assert healthy.all_inner_texts() == ["Healthy", "Healthy"]
    assert sorted(page.locator(".card .kind").all_inner_texts()) == ["Kafka", "RabbitMQ"]
    assert "RabbitMQ" in page.inner_text("main") and "Kafka" in page.inner_text("main")
    # the websocket connects with the session cookie and the page's own Origin
    page.wait_for_selector('#live-state[data-state="open"]', timeout=10_000)
    page.close()


def test_a_wrong_password_stays_on_the_login_page(browser, daphne_url):
    page = browser.new_page()
    page.goto(daphne_url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "wrong")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "Wrong username or password."
    page.close()
