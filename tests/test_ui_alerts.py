"""Chromium on alerts: an operator creates a depth rule by click on a queue that holds
messages, a real collector samples the real RabbitMQ queue and makes it fire, the queue
page's and the overview's badges and the Alerts page's row show it without a reload,
and the operator silences it by click and the badges go.

Daphne (``dlq_daphne``) and the collector share the served database.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from tests.conftest import PYTHON, ROOT
from tests.support.alerts import process_log
from tests.support.metrics import collector_process, declare, publish, run_django, unique

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.redis]

OPERATOR, PASSWORD = "oscar", "alerts-operator-pass-1"


@pytest.fixture
def operator_page(browser, dlq_daphne) -> Iterator[tuple[Any, str, dict[str, str]]]:
    url, env = dlq_daphne
    subprocess.run(
        [PYTHON, "manage.py", "ensure_user", OPERATOR, "--role", "operator"],
        cwd=ROOT,
        env={**env, "MQB_USER_PASSWORD": PASSWORD},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    context = browser.new_context()  # its tabs share the login
    page = context.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", OPERATOR)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    yield page, url, env
    context.close()


def _forget(env: dict[str, str], queue: str) -> None:
    run_django(
        env,
        "from dashboard.models import Alert, AlertRule, Silence; "
        f"AlertRule.objects.filter(pattern={queue!r}).delete(); "
        f"Alert.objects.filter(entity__endswith={'/' + queue!r}).delete(); "
        f"Silence.objects.filter(matchers__entity__endswith={queue!r}).delete(); print(1)",
    )


BADGE = """(want) => {
  const el = document.querySelector("[data-alerts-badge]");
  if (!el) return false;
  const link = el.querySelector("[data-field=alerts-firing]");
  return el.dataset.firing === String(want) && link.hidden === (want === 0);
}"""
BADGE_OPEN = "() => document.querySelector('[data-alerts-badge]').dataset.live === 'open'"
PAGE_OPEN = "() => document.getElementById('live-state').dataset.state === 'open'"
FIRING_ROW = """(queue) => Array.from(document.querySelectorAll("tr[data-alert]")).some(
  (tr) => tr.dataset.state === "firing" && tr.textContent.includes(queue))"""


def test_an_operator_creates_a_rule_by_click_sees_it_fire_live_and_silences_it(
    operator_page, rabbitmq_vhost
):
    page, url, env = operator_page
    queue = unique("ui-alert")
    declare(rabbitmq_vhost, queue)
    publish(rabbitmq_vhost, queue, 3)
    entity = f"{quote(rabbitmq_vhost, safe='')}/{queue}"
    queue_url = f"{url}/rabbitmq/test-rabbitmq/queue?vhost={quote(rabbitmq_vhost)}&name={queue}"
    try:
        page.goto(queue_url)
        page.click("#alert-on-this")
        page.wait_for_url(url + "/alerts/rules/new?*")
        assert page.input_value("select[name=kind]") == "queue_depth"
        assert page.input_value("select[name=cluster]") == "test-rabbitmq"
        assert page.input_value("select[name=syntax]") == "exact"
        assert page.input_value("input[name=pattern]") == queue
        page.fill("input[name=threshold]", "0")
        page.fill("input[name=for_seconds]", "0")
        with page.expect_navigation():
            page.click("#save-rule")
        assert page.url == url + "/alerts/rules/"
        assert page.locator("tr[data-rule]", has_text=queue).get_attribute("data-enabled") == "1"

        # Three tabs of one session, drawn before anything fires: never reloaded below.
        page.goto(queue_url)
        overview = page.context.new_page()
        overview.goto(url + "/")
        alerts = page.context.new_page()
        alerts.goto(url + "/alerts/")
        for tab in (page, overview):
            tab.wait_for_function(BADGE, arg=0)
            tab.wait_for_function(BADGE_OPEN)
        alerts.wait_for_function(PAGE_OPEN)

        collector_env = {**env, "MQB_METRICS_RABBITMQ_VHOSTS": rabbitmq_vhost}
        with collector_process(collector_env, "--only", "metrics", "--interval", "1") as process:
            try:
                page.wait_for_function(BADGE, arg=1, timeout=60_000)
            except PlaywrightTimeout as exc:
                raise AssertionError(f"{exc}; log:\n{process_log(process)}") from None
            assert page.locator("[data-alerts-badge] .badge").inner_text() == "1 firing"
            overview.wait_for_function(BADGE, arg=1)
            alerts.wait_for_function(FIRING_ROW, arg=queue)
            row = alerts.locator("tr[data-alert]", has_text=queue)
            assert "Firing" in row.locator(".badge").first.inner_text()
            assert row.get_attribute("data-silenced") is None

            row.locator("[data-action=silence]").click()
            alerts.wait_for_url(url + "/alerts/silences/new?alert=*")
            assert alerts.input_value("input[name=entity]") == entity
            alerts.fill("input[name=reason]", "draining it by hand")
            with alerts.expect_navigation():
                alerts.click("#save-silence")
            assert alerts.url.startswith(url + "/alerts/")
            row = alerts.locator("tr[data-alert]", has_text=queue)
            assert row.get_attribute("data-silenced") == "1"
            assert "Silenced" in row.locator(".alert-state").inner_text()
            # The silence reaches the tabs drawn before it: the badges go.
            page.wait_for_function(BADGE, arg=0)
            overview.wait_for_function(BADGE, arg=0)
        alerts.click("#silences-link")
        silence = alerts.locator("tr[data-silence]", has_text="draining it by hand")
        assert silence.get_attribute("data-state") == "active"
    finally:
        _forget(env, queue)
