"""Chromium on the retry policies: an admin creates a dry-run rule by click, letters captured
afterwards are only recorded, then the admin switches dry run off and the next letter is
scheduled; the policies page and the letter page show the decisions.

Daphne (``dlq_daphne``) serves its own database. Letters are stored there by a
``python -c`` script that inserts the rows and applies the policies as the
capture transaction does (``engine.apply_at_capture``).
"""

from __future__ import annotations

import subprocess
import uuid

import pytest

from tests.conftest import PYTHON, ROOT
from tests.support.letter_page import confirm, run_script

pytestmark = [pytest.mark.browser]

ADMIN, PASSWORD = "pia", "policy-admin-pass-1"

CAPTURE = """
import json, sys
import django
django.setup()
from django.db import transaction
from dashboard.core.clusters import sync_cluster_rows
from dashboard.deadletters.policies.engine import apply_at_capture
from dashboard.models import DeadLetter
spec = json.loads(sys.stdin.read())
cluster = sync_cluster_rows()["test-rabbitmq"]
with transaction.atomic():
    letter = DeadLetter.objects.create(
        cluster=cluster, dlq=spec["dlq"], capture_key=spec["key"], origin_queue="orders",
        reason="rejected", exception_class="OrderRejected", fingerprint="f" * 16,
    )
    apply_at_capture(cluster.pk, [{"capture_key": spec["key"], "dlq": spec["dlq"]}])
print(json.dumps(letter.pk))
"""


@pytest.fixture
def admin_page(browser, dlq_daphne):
    url, env = dlq_daphne
    subprocess.run(
        [PYTHON, "manage.py", "ensure_user", ADMIN, "--role", "admin"],
        cwd=ROOT,
        env={**env, "MQB_USER_PASSWORD": PASSWORD},
        check=True,
        stdout=subprocess.DEVNULL,
    )
    page = browser.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", ADMIN)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    yield page, url, env
    page.close()


def test_an_admin_creates_a_dry_run_rule_by_click_then_switches_dry_run_off(admin_page):
    page, url, env = admin_page
    dlq = f"ui-pol-{uuid.uuid4().hex[:8]}.dlq"
    name = f"retry {dlq}"
    page.goto(url + "/deadletters/")
    page.click("#policies-link")
    page.wait_for_url(url + "/deadletters/policies/")
    page.click("#new-policy")
    page.fill("input[name=name]", name)
    page.fill("input[name=match_dlq]", dlq)
    page.fill("input[name=delay_seconds]", "120")
    assert page.is_checked("input[name=dry_run]")
    with page.expect_navigation():
        page.click("#save-policy")
    row = page.locator("tr[data-policy]", has_text=name)
    assert row.get_attribute("data-mode") == "dry_run"
    assert "Dry run" in row.locator(".badge").inner_text()

    recorded = run_script(env, CAPTURE, {"dlq": dlq, "key": uuid.uuid4().hex})
    page.goto(f"{url}/deadletters/{recorded}/")
    decision = page.locator("#letter-policies tr[data-decision=retry]")
    assert decision.get_attribute("data-dry-run") == "1"
    assert name in decision.inner_text() and "would have" in decision.inner_text()
    assert page.locator("#letter-status .badge").get_attribute("data-status") == "pending"

    page.goto(url + "/deadletters/policies/")
    row = page.locator("tr[data-policy]", has_text=name)
    assert row.locator("[data-col=would]").inner_text() == "retried 1, parked 0"
    confirm(page, row.locator("button[data-action=activate]"))
    row = page.locator("tr[data-policy]", has_text=name)
    assert row.get_attribute("data-mode") == "active"

    scheduled = run_script(env, CAPTURE, {"dlq": dlq, "key": uuid.uuid4().hex})
    page.goto(f"{url}/deadletters/{scheduled}/")
    decision = page.locator("#letter-policies tr[data-decision=retry]")
    assert decision.get_attribute("data-dry-run") is None
    assert decision.locator("time").count() == 2  # when, and the due time
    assert page.locator("#letter-status .badge").get_attribute("data-status") == "scheduled"
    page.goto(url + "/deadletters/policies/")
    row = page.locator("tr[data-policy]", has_text=name)
    assert row.locator("[data-col=retries]").inner_text() == "1"
