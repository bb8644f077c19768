"""A non-superuser admin-role user works in the Django admin (Chromium, real Daphne).

The role groups get their model permissions from migration 0009; before it,
such a user saw "You don't have permission to view or edit anything". The
letters are really dead-lettered on RabbitMQ and captured into the served
database; the requeue and purge actions go through the audited services.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.conftest import PYTHON, ROOT
from tests.support import deadletter_flow as flow

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]

PASSWORD = "admin-role-pass-7"

CAPTURE_THREE = """
import asyncio, json, sys
import django
django.setup()
from tests.support import deadletter_flow as flow
made = asyncio.run(flow.rabbitmq_dead_letters(sys.argv[1], sys.argv[2:], prefix="adm"))
rows = asyncio.run(flow.rows_of(made.dlq))
print(json.dumps({"ids": {r.message_id: r.pk for r in rows}, "work": made.work, "dlq": made.dlq}))
"""


MAKE_STAFF = """
from django.contrib.auth.models import User
User.objects.filter(username={!r}).update(is_staff=True)
"""


def in_thread(coroutine):
    """Run a coroutine beside Playwright's own event loop (which holds this thread)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def run(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [PYTHON, *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=90
    )
    return done.stdout


def run_action(page, ids: list[int], action: str) -> str:
    for pk in ids:
        page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    page.wait_for_load_state()
    return str(page.inner_text("ul.messagelist"))


def test_it_requeues_and_purges_as_a_non_superuser_admin(browser, dlq_daphne, rabbitmq_vhost):
    url, env = dlq_daphne
    username = f"adm-{uuid.uuid4().hex[:6]}"
    run(
        {**env, "MQB_USER_PASSWORD": PASSWORD},
        "manage.py",
        "ensure_user",
        username,
        "--role",
        "admin",
    )
    message_ids = [f"adm-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    made = json.loads(run(env, "-c", CAPTURE_THREE, rabbitmq_vhost, *message_ids).splitlines()[-1])
    kept, *purged = (made["ids"][m] for m in message_ids)

    page = browser.new_page()
    page.goto(url + "/admin/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(url + "/admin/")
    assert "permission" not in page.inner_text("#content")
    assert page.locator("a", has_text="Dead letters").count() >= 1

    page.goto(f"{url}/admin/dashboard/deadletter/?q={made['dlq']}")
    requeued = run_action(page, [kept], "requeue_selected")
    arrived = in_thread(flow.take_all(rabbitmq_vhost, made["work"], 1))
    page.goto(f"{url}/admin/dashboard/deadletter/?q={made['dlq']}")
    purge_message = run_action(page, purged, "purge_selected")
    listed = page.inner_text("#result_list")

    assert "Requeued 1, failed 0" in requeued
    assert arrived[0].message_id == message_ids[0]
    assert "Purged 2" in purge_message
    assert str(kept) in listed
    assert not any(f">{pk}<" in page.inner_html("#result_list") for pk in purged)

    page.goto(f"{url}/admin/dashboard/auditentry/?q={username}")
    audit = page.inner_text("#result_list")
    assert "Dead-letter requeue" in audit and "Dead-letter purge" in audit
    page.close()


def test_the_purge_action_is_offered_to_admins_only(browser, dlq_daphne):
    url, env = dlq_daphne
    username = f"ops-{uuid.uuid4().hex[:6]}"
    run(
        {**env, "MQB_USER_PASSWORD": PASSWORD},
        "manage.py",
        "ensure_user",
        username,
        "--role",
        "operator",
    )
    # An operator made staff by hand: the grants of the operator group apply.
    run(env, "manage.py", "shell", "-c", MAKE_STAFF.format(username))

    page = browser.new_page()
    page.goto(url + "/admin/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(url + "/admin/")
    page.goto(url + "/admin/dashboard/deadletter/")
    actions = page.locator("select[name=action] option").all_inner_texts()

    assert any("Requeue" in a for a in actions)
    assert not any("Purge" in a for a in actions)
    page.close()
