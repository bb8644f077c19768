"""The dry run of a bulk requeue in Chromium, on the served app with a real worker and RabbitMQ:
a group's Requeue -> the dry run -> Requeue now -> the job page and the letters at their origin;
a schedule spread with backoff from the dry-run page -> letters due with growing gaps."""

from __future__ import annotations

import itertools
import subprocess
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import ROOT, celery_worker_command, stop_process
from tests.settings import RUN_ID
from tests.support.dry_run import dry_run_targets, dry_run_total, open_dry_run, requeue_now
from tests.support.letter_page import (
    SEED,
    declare_queue,
    letter_row,
    login,
    run_script,
    take,
)

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]

DUE = """
import json, sys
import django
django.setup()
from dashboard.models import DeadLetter
rows = DeadLetter.objects.filter(pk__in=json.loads(sys.stdin.read())).order_by("due_at")
print(json.dumps([[r.status, r.due_at.isoformat() if r.due_at else None] for r in rows]))
"""


@pytest.fixture(scope="module")
def preview_worker(dlq_daphne) -> Iterator[subprocess.Popen[bytes]]:
    """A real Celery worker on the served database, watching the same clusters as Daphne."""
    _url, env = dlq_daphne
    log = open(ROOT / "var" / "log" / f"test-ui-preview-worker-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        celery_worker_command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    yield process
    stop_process(process)
    log.close()


@pytest.fixture
def rabbit(dlq_daphne, rabbitmq_vhost) -> tuple[str, dict[str, str], str, str]:
    url, env = dlq_daphne
    return url, env, rabbitmq_vhost, declare_queue(rabbitmq_vhost)


def seed_group(env: dict[str, str], vhost: str, queue: str, count: int) -> tuple[str, list[int]]:
    dlq, group = f"{queue}.dlq", uuid.uuid4().hex[:16]
    rows = [
        letter_row(queue, dlq, f'{{"n": {i}}}'.encode(), vhost=vhost, fingerprint=group)
        for i in range(count)
    ]
    return dlq, run_script(env, SEED, {"letters": rows})


def test_a_group_requeue_goes_through_its_dry_run_to_the_job_and_the_origin(
    browser, rabbit, preview_worker
):
    url, env, vhost, queue = rabbit
    dlq, ids = seed_group(env, vhost, queue, 4)
    page, native = login(browser, url)
    page.goto(f"{url}/deadletters/?dlq={quote(dlq)}")

    open_dry_run(page, page.locator("form.group-requeue button", has_text="Requeue group"))

    assert dry_run_total(page) == 4
    assert dry_run_targets(page) == {f"(default) / {queue}": 4}
    assert page.locator("#preview-unroutable").count() == 0
    assert page.locator('#preview-targets [data-col="now"]').inner_text() == "Exists"
    question = requeue_now(page, rate=100)
    page.wait_for_url("**/jobs/*/")
    assert question == "Requeue these 4 dead letters now, as a job?"
    assert native == []
    page.wait_for_function(
        "() => document.getElementById('job').dataset.state === 'done'", timeout=60_000
    )
    arrived = take(vhost, queue, 4)
    assert sorted(bytes(m.body) for m in arrived) == [b'{"n": %d}' % i for i in range(4)]
    statuses = [status for status, _ in run_script(env, DUE, ids)]
    assert statuses == ["requeued"] * 4
    page.close()


def test_a_schedule_spread_with_backoff_from_the_dry_run_page_has_growing_gaps(browser, rabbit):
    url, env, vhost, queue = rabbit
    dlq, ids = seed_group(env, vhost, queue, 4)
    page, _native = login(browser, url)
    page.goto(f"{url}/deadletters/?dlq={quote(dlq)}")
    open_dry_run(page, page.locator("form.group-requeue button", has_text="Requeue group"))

    form = page.locator("#schedule")
    form.locator("input[name=mode][value=spread]").check()
    assert form.locator("input[name=at]").is_hidden()
    form.locator("input[name=delay_minutes]").fill("120")
    form.locator("input[name=base]").fill("60")
    form.locator("input[name=factor]").fill("2")
    form.locator("input[name=cap]").fill("600")
    plan = page.inner_text("#schedule-plan")
    # 60 s, then 120 s, then 240 s: the last is due 7 minutes after the first.
    assert plan.startswith("First at ") and "the last of 4 letters due about" in plan, plan
    assert "(7 min after the first)" in plan, plan
    with page.expect_navigation():
        form.locator("button[type=submit]").click()

    assert "Scheduled 4 dead letters" in page.inner_text("main")
    due: list[Any] = run_script(env, DUE, ids)
    assert [status for status, _ in due] == ["scheduled"] * 4
    times = [datetime.fromisoformat(at) for _, at in due]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(times)]
    assert gaps == [60, 120, 240]
    page.close()
