"""Debian's Chromium through the dead-letter inbox under real Daphne: requeue one by click.

The served Daphne watches one RabbitMQ cluster, ``test-rabbitmq``, in this
run's test vhost. A dead letter is made by really rejecting a message and
captured into the served database by a subprocess running the real capture
engine; the browser opens it from the inbox, requeues it (accepting the
confirm) and the test sees it arrive at its origin queue (and topic).

The bulk test runs a real Celery worker on the same database and clusters: the
operator requeues a failure group of 200 letters at 20 per second from the
inbox, lands on the job page and the test watches its progress bar move over
the websocket, in the same document, until the verdict.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import quote

import pytest

from tests.conftest import (
    PYTHON,
    ROOT,
    celery_worker_command,
    stop_process,
)
from tests.settings import RUN_ID
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h
from tests.support.deadletter_flow import CAPTURE, KAFKA_CAPTURE
from tests.support.dry_run import dry_run_total, open_dry_run

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]


def login(page, url: str) -> None:
    page.goto(url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def confirm_in_dialog(page) -> str:
    """Answers the page's confirmation dialog (a modal <dialog>, never window.confirm)."""
    dialog = page.locator("dialog[open]")
    question = str(dialog.locator("p").inner_text())
    dialog.locator("button.btn-danger, button.btn-primary").click()
    return question


def test_it_requeues_a_dead_letter_by_click_and_it_arrives_at_its_origin(
    browser, dlq_daphne, rabbitmq_vhost
):
    url, env = dlq_daphne
    message_id = f"browser-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(
        [PYTHON, "-c", CAPTURE, rabbitmq_vhost, message_id],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    letter = json.loads(made.stdout.strip().splitlines()[-1])

    page = browser.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")

    page.click("nav >> text=Dead letters")
    page.wait_for_url("**/deadletters/")
    page.fill("input[name=dlq]", letter["dlq"])
    page.check("input[name=view]")
    page.click(".inbox-filter button[type=submit]")
    page.click(f"tr[data-letter='{letter['id']}'] >> text=#{letter['id']}")
    page.wait_for_selector("#requeue-button")
    assert '"order": 0' in page.inner_text("#letter-body")

    page.click("#requeue-button")
    question = confirm_in_dialog(page)
    page.wait_for_selector("#letter-status >> text=requeued")
    assert question.startswith(f"Requeue dead letter #{letter['id']}")
    assert "Dead-letter requeue" in page.inner_text("table.audit")
    assert "deadletter.requeue" not in page.inner_text("table.audit")

    # Playwright's sync API keeps an event loop in this thread: read from another one.
    with ThreadPoolExecutor(1) as pool:
        [message] = pool.submit(asyncio.run, flow.take_all(rabbitmq_vhost, letter["work"])).result()
    assert message.message_id == message_id
    assert message.headers["x-mqboard-requeue-count"] == 1


@pytest.fixture
def kafka_topics(dlq_daphne):
    origin = h.create_topic(h.kafka_name("-orders"))
    dlq = h.create_topic(h.kafka_name("-dlq"))
    group = f"{dlq}-group"
    yield origin, dlq, group
    h.delete_group(group)
    h.delete_topics(origin, dlq)


@pytest.mark.kafka
def test_it_requeues_a_kafka_dead_letter_by_click_to_its_origin_topic(
    browser, dlq_daphne, kafka_topics
):
    url, env = dlq_daphne
    origin, dlq, group = kafka_topics
    key = f"browser-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(
        [PYTHON, "-c", KAFKA_CAPTURE, origin, dlq, key],
        cwd=ROOT,
        env={**env, "MQB_KAFKA_CAPTURE_GROUP": group},
        check=True,
        capture_output=True,
        text=True,
        timeout=90,
    )
    letter_id = json.loads(made.stdout.strip().splitlines()[-1])["id"]

    page = browser.new_page()
    login(page, url)
    page.goto(f"{url}/deadletters/{letter_id}/")
    page.click("#requeue-button")
    confirm_in_dialog(page)
    page.wait_for_selector("#letter-status >> text=requeued")

    [(got_key, value, headers)] = flow.read_topic(origin, 1)
    assert got_key == key.encode()
    assert value == b'{"order": 0}'
    assert ("x-mqboard-requeue-count", b"1") in headers


# -- a bulk requeue whose progress bar moves -------------------------------------

BULK_CAPTURE = """
import asyncio, json, sys
import django
django.setup()
from tests.support import deadletter_flow as flow
ids = [f"{sys.argv[2]}-{i}" for i in range(int(sys.argv[3]))]
made = asyncio.run(flow.rabbitmq_dead_letters(sys.argv[1], ids, prefix="brwbulk"))
print(json.dumps({"work": made.work, "dlq": made.dlq}))
"""
BULK_LETTERS = 200
BULK_RATE = 20  # messages per second: about ten seconds of progress to watch


@pytest.fixture(scope="module")
def dlq_worker(dlq_daphne):
    """A real Celery worker on the served database, watching the same clusters as Daphne."""

    _url, env = dlq_daphne
    log = open(ROOT / "var" / "log" / f"test-dlq-worker-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        celery_worker_command(),
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield process
    stop_process(process)
    log.close()


PROGRESS = """() => {
  const bar = document.getElementById("job-progress");
  const verdict = document.querySelector('#job [data-field="verdict"]');
  return {value: bar.value, max: bar.max, busy: bar.hasAttribute("aria-busy"),
          state: document.getElementById("job").dataset.state,
          verdict: verdict.hidden ? "" : verdict.textContent,
          sameDocument: window.__requeueWatch === true};
}"""


def test_a_group_requeue_moves_its_progress_bar_live_and_ends_with_the_verdict(
    browser, dlq_daphne, dlq_worker, rabbitmq_vhost
):
    url, env = dlq_daphne
    run = uuid.uuid4().hex[:8]
    made = subprocess.run(
        [PYTHON, "-c", BULK_CAPTURE, rabbitmq_vhost, f"bulk-{run}", str(BULK_LETTERS)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    letters = json.loads(made.stdout.strip().splitlines()[-1])

    page = browser.new_page()
    login(page, url)
    # The group view of this DLQ: one failure group holding every letter.
    page.goto(f"{url}/deadletters/?dlq={quote(letters['dlq'])}")
    group = page.locator("table.groups tbody tr[data-group]")
    assert group.count() == 1
    assert group.locator("td.num").first.inner_text() == str(BULK_LETTERS)
    open_dry_run(page, group.locator("button", has_text="Requeue group"))
    assert dry_run_total(page) == BULK_LETTERS
    page.fill("#requeue-now input[name=rate_limit]", str(BULK_RATE))
    page.locator("#requeue-now button[type=submit]").click()
    question = confirm_in_dialog(page)
    page.wait_for_url("**/jobs/*/")
    assert f"Requeue these {BULK_LETTERS} dead letters now, as a job?" in question
    page.evaluate("() => { window.__requeueWatch = true; }")
    page.wait_for_selector('#live-state[data-state="open"]', timeout=10_000)
    what = page.inner_text(".job-what")
    assert f"{BULK_LETTERS} dead letters back to their origins" in what
    assert f"limited to {BULK_RATE} messages/s" in what

    # Watch the bar until the verdict shows, without reloading the page.
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        snapshot = page.evaluate(PROGRESS)
        if not seen or snapshot["value"] != seen[-1]["value"] or snapshot["verdict"]:
            seen.append(snapshot)
        if snapshot["verdict"]:
            break
        page.wait_for_timeout(100)
    final = seen[-1]
    assert final["verdict"], f"no verdict within 90 s; last seen {final}"
    assert final["sameDocument"], "the page was reloaded"
    values = [s["value"] for s in seen if not s["busy"]]
    assert values == sorted(values), f"the bar went backwards: {values}"
    between = {v for v in values if 0 < v < BULK_LETTERS}
    assert len(between) >= 3, f"the bar did not move in steps: {values}"
    assert (final["value"], final["max"], final["state"]) == (BULK_LETTERS, BULK_LETTERS, "done")
    assert final["verdict"].startswith(f"Done: {BULK_LETTERS} of {BULK_LETTERS} requeued, 0 failed")
    assert page.inner_text('#job [data-field="done"]') == str(BULK_LETTERS)
    page.close()

    with ThreadPoolExecutor(1) as pool:
        arrived = pool.submit(asyncio.run, drain(rabbitmq_vhost, letters["work"])).result()
    assert sorted(arrived) == sorted(f"bulk-{run}-{i}" for i in range(BULK_LETTERS))


async def drain(vhost: str, queue: str) -> list[str]:
    """Message ids of everything in the queue (taken), reading until it stays empty."""
    connection = await h.amqp(vhost)
    try:
        channel = await connection.channel()
        source = await channel.get_queue(queue)
        ids: list[str] = []
        while (message := await source.get(fail=False, no_ack=True, timeout=10)) is not None:
            ids.append(str(message.message_id))
        return ids
    finally:
        await connection.close()
