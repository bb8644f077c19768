"""Chromium: an operator schedules a group's requeue by click and watches it fire.

Real parts: Daphne serving the app (``dlq_daphne``), a Celery worker on the
same database (its dispatcher thread sends due letters, as in production),
Redis, and RabbitMQ: the letters are really dead-lettered (rejected from a work
queue into its DLQ) and captured by the capture engine. The operator goes from
the inbox's "Requeue group" to the dry run, spreads the requeue with backoff
6 s ahead, lands on the schedule's page and reloads it until every
letter is sent; the messages are then at their origin queue, each once.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import ROOT, celery_worker_command, stop_process
from tests.settings import RUN_ID
from tests.support.dispatch import wait_until
from tests.support.dry_run import dry_run_total, open_dry_run
from tests.support.e2e import depth
from tests.support.letter_page import login, run_script, take

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.celery, pytest.mark.redis]

CAPTURE = """
import asyncio, json, sys
import django
django.setup()
from tests.support import deadletter_flow as flow
spec = json.loads(sys.stdin.read())
made = asyncio.run(flow.rabbitmq_dead_letters(spec["vhost"], spec["ids"], prefix="fire"))
rows = asyncio.run(flow.rows_of(made.dlq))
print(json.dumps({"ids": [r.pk for r in rows], "work": made.work, "dlq": made.dlq}))
"""

READ = """
import json, sys
import django
django.setup()
from dashboard.models import DeadLetter
rows = DeadLetter.objects.filter(pk__in=json.loads(sys.stdin.read())).order_by("pk")
print(json.dumps([[r.status, r.schedule_id] for r in rows]))
"""


@pytest.fixture(scope="module")
def dispatching_worker(dlq_daphne, redis_url, tmp_path_factory) -> Iterator[None]:
    """A real Celery worker on the served database: its dispatcher thread sends due letters."""
    _url, env = dlq_daphne
    log = open(ROOT / "var" / "log" / f"test-ui-fires-worker-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        celery_worker_command("-n", f"mqb-fires-{uuid.uuid4().hex[:6]}@%h"),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield
    stop_process(process)
    log.close()


def count(page: Any, name: str) -> int:
    text = page.inner_text(f'#schedule-counts [data-count="{name}"]')
    return int(text.split()[0].replace(",", ""))


def test_a_group_requeue_scheduled_by_click_fires_and_reaches_its_origin_once(
    browser, dlq_daphne, dispatching_worker, rabbitmq_vhost
):
    url, env = dlq_daphne
    message_ids = [f"fire-{uuid.uuid4().hex[:8]}-{i}" for i in range(3)]
    made = run_script(env, CAPTURE, {"vhost": rabbitmq_vhost, "ids": message_ids})
    ids, work, dlq = made["ids"], made["work"], made["dlq"]
    assert len(ids) == 3
    page, native = login(browser, url)
    page.goto(f"{url}/deadletters/?dlq={quote(dlq)}")

    groups = page.locator("form.group-requeue button", has_text="Requeue group")
    assert groups.count() == 1, "one failure group"
    open_dry_run(page, groups.first)
    assert dry_run_total(page) == 3

    # Spread with backoff, starting 6 s from now: due at +6, +7 and +9 s.
    form = page.locator("#schedule")
    form.locator("input[name=mode][value=spread]").check()
    form.locator("input[name=delay_minutes]").fill("0.1")
    form.locator("input[name=base]").fill("1")
    form.locator("input[name=factor]").fill("2")
    form.locator("input[name=cap]").fill("4")
    with page.expect_navigation():
        form.locator("button[type=submit]").click()
    page.wait_for_url("**/deadletters/schedules/*/")
    assert "Scheduled 3 dead letters" in page.inner_text("main")
    schedule = int(page.url.rstrip("/").rsplit("/", 1)[1])
    # On a slow machine the first letter may already be out when the page is read.
    assert count(page, "waiting") + count(page, "sent") == 3
    assert [row[1] for row in run_script(env, READ, ids)] == [schedule] * 3
    state = page.locator("#schedule-state .badge").get_attribute("data-status")
    assert state in ("active", "finished")

    def fired() -> bool:
        page.reload()
        state = page.locator("#schedule-state .badge").get_attribute("data-status")
        return count(page, "sent") == 3 and state == "finished"

    wait_until(fired, 40, "the schedule's page to show 3 letters sent, finished", step=1.0)
    assert count(page, "waiting") == 0 and count(page, "failed") == 0
    assert page.locator(".schedule-letters .badge[data-status=requeued]").count() == 3
    assert native == []
    page.close()

    arrived = take(rabbitmq_vhost, work, 3)
    assert sorted(m.message_id for m in arrived) == sorted(message_ids)
    time.sleep(1)  # a second copy of any of them would be in the queue by now
    assert depth(rabbitmq_vhost, work) == 0, "each message once"
    assert run_script(env, READ, ids) == [["requeued", schedule]] * 3
