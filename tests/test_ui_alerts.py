"""Chromium on alerts: an operator creates a depth rule by click on a queue that holds
messages, a real collector samples the real RabbitMQ queue and makes it fire, the alerts
page shows it firing, and the operator silences it by click.

Daphne (``dlq_daphne``) and the collector share the served database.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import PYTHON, ROOT
from tests.support.alerts import process_log
from tests.support.metrics import collector_process, declare, publish, run_django, unique, wait_for

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
    page = browser.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", OPERATOR)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    yield page, url, env
    page.close()


def _forget(env: dict[str, str], queue: str) -> None:
    run_django(
        env,
        "from dashboard.models import Alert, AlertRule, Silence; "
        f"AlertRule.objects.filter(pattern={queue!r}).delete(); "
        f"Alert.objects.filter(entity__endswith={'/' + queue!r}).delete(); "
        f"Silence.objects.filter(matchers__entity__endswith={queue!r}).delete(); print(1)",
    )


def test_an_operator_creates_a_rule_by_click_sees_it_fire_and_silences_it(
    operator_page, rabbitmq_vhost
):
    page, url, env = operator_page
    queue = unique("ui-alert")
    declare(rabbitmq_vhost, queue)
    publish(rabbitmq_vhost, queue, 3)
    entity = f"{quote(rabbitmq_vhost, safe='')}/{queue}"
    try:
        page.goto(url + "/alerts/")
        page.click("#rules-link")
        page.click("#new-rule")
        page.fill("input[name=name]", f"deep {queue}")
        page.select_option("select[name=kind]", "queue_depth")
        page.select_option("select[name=cluster]", "test-rabbitmq")
        page.select_option("select[name=syntax]", "exact")
        page.fill("input[name=pattern]", queue)
        page.select_option("select[name=comparison]", "gt")
        page.fill("input[name=threshold]", "0")
        page.fill("input[name=for_seconds]", "0")
        with page.expect_navigation():
            page.click("#save-rule")
        assert page.url == url + "/alerts/rules/"
        assert page.locator("tr[data-rule]", has_text=queue).get_attribute("data-enabled") == "1"

        collector_env = {**env, "MQB_METRICS_RABBITMQ_VHOSTS": rabbitmq_vhost}
        with collector_process(collector_env, "--only", "metrics", "--interval", "1") as process:
            page.click("#alerts-link")
            row = page.locator("tr[data-alert]", has_text=queue)

            def firing() -> bool:
                page.reload()
                return bool(row.count() == 1 and row.get_attribute("data-state") == "firing")

            try:
                wait_for(firing, timeout=60, what="the alert to fire")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; log:\n{process_log(process)}") from None
        assert "Firing" in row.locator(".badge").first.inner_text()
        assert row.get_attribute("data-silenced") is None

        row.locator("[data-action=silence]").click()
        page.wait_for_url(url + "/alerts/silences/new?alert=*")
        assert page.input_value("input[name=entity]") == entity
        page.fill("input[name=reason]", "draining it by hand")
        with page.expect_navigation():
            page.click("#save-silence")
        assert page.url.startswith(url + "/alerts/")
        row = page.locator("tr[data-alert]", has_text=queue)
        assert row.get_attribute("data-silenced") == "1"
        assert "Silenced" in row.locator(".alert-state").inner_text()
        page.click("#silences-link")
        silence = page.locator("tr[data-silence]", has_text="draining it by hand")
        assert silence.get_attribute("data-state") == "active"
    finally:
        _forget(env, queue)
