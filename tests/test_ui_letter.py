"""Chromium on a dead letter's page, its edit-and-requeue form, and the bulk requeue's job page.

Daphne (``dlq_daphne``) watches ``test-rabbitmq`` in this run's vhost. Letters
are stored in the served database by a ``python -c`` script (as the capture
would store them); requeues go to real RabbitMQ queues and the test reads back
the exact bytes that arrive. Bulk requeues run on a real Celery worker.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import uuid
from urllib.parse import quote

import msgpack
import pytest

from tests.conftest import ROOT, celery_worker_command, stop_process
from tests.settings import RUN_ID
from tests.support.dry_run import dry_run_total, open_dry_run, requeue_now
from tests.support.letter_page import (
    COME_BACK,
    SEED,
    confirm,
    declare_queue,
    letter_row,
    login,
    run_script,
    take,
)

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]


@pytest.fixture
def rabbit(dlq_daphne, rabbitmq_vhost):
    url, env = dlq_daphne
    return url, env, rabbitmq_vhost, declare_queue(rabbitmq_vhost)


# -- the letter's status and job kinds read as labels and badges --------------------


def test_letter_status_and_job_states_are_badges_and_job_kinds_are_titles(browser, rabbit):
    url, env, vhost, queue = rabbit
    [letter_id, job_id] = run_script(
        env,
        SEED,
        {
            "letters": [letter_row(queue, f"{queue}.dlq", b'{"a": 1}', vhost=vhost)],
            "jobs": [{"kind": "deadletters.requeue", "state": "done", "total": 2, "done": 2}],
        },
    )
    page, native = login(browser, url)
    page.goto(f"{url}/deadletters/{letter_id}/")
    status = page.locator("#letter-status .badge")
    assert status.get_attribute("class").split() == ["badge", "badge-warn"]
    assert status.get_attribute("data-status") == "pending"
    assert status.inner_text() == "Pending"
    colours = status.evaluate(
        "el => [getComputedStyle(el).color, getComputedStyle(el).backgroundColor]"
    )
    assert colours[0] != "rgb(255, 255, 255)" and colours[1] != "rgba(0, 0, 0, 0)", colours

    page.goto(f"{url}/jobs/")
    row = page.locator(f"tr:has(a[href='/jobs/{job_id}/'])")
    assert "deadletters.requeue" not in page.inner_text("main")
    assert "Requeue dead letters" in row.inner_text()
    badge = row.locator(".badge[data-status=done]")
    assert badge.inner_text() == "Done"

    page.goto(f"{url}/jobs/{job_id}/")
    assert "deadletters.requeue" not in page.inner_text("main")
    state = page.locator('#job [data-field="state"]')
    assert "badge" in state.get_attribute("class").split()
    assert state.get_attribute("data-status") == "done"
    assert native == []


def test_the_letter_status_badge_follows_the_letter_without_a_reload(browser, rabbit):
    url, env, vhost, queue = rabbit
    [letter_id] = run_script(
        env, SEED, {"letters": [letter_row(queue, f"{queue}.dlq", b"{}", vhost=vhost)]}
    )
    page, _native = login(browser, url)
    page.goto(f"{url}/deadletters/{letter_id}/")
    page.evaluate("() => { window.__sameLetterPage = true; }")
    run_script(env, SEED, {"status": [[letter_id, "discarded"]]})
    badge = page.wait_for_selector("#letter-status .badge[data-status=discarded]", timeout=15_000)
    assert badge.inner_text() == "Discarded"
    assert "badge-muted" in (badge.get_attribute("class") or "").split()
    assert page.evaluate("() => window.__sameLetterPage === true")


# -- edit and requeue: MessagePack stays MessagePack, binary as base64 or hex -------


def test_a_messagepack_body_is_edited_as_json_and_arrives_as_messagepack(browser, rabbit):
    url, env, vhost, queue = rabbit
    value = {"order": 7, "items": ["a", "b"], "ok": True, "price": 1.5}
    [letter_id] = run_script(
        env,
        SEED,
        {
            "letters": [
                letter_row(
                    queue,
                    f"{queue}.dlq",
                    msgpack.packb(value),
                    vhost=vhost,
                    props={"content_type": "application/msgpack"},
                )
            ]
        },
    )
    page, native = login(browser, url)
    page.goto(f"{url}/deadletters/{letter_id}/")
    page.click("summary:has-text('Edit and requeue')")
    box = page.locator("textarea[name=body]")
    assert json.loads(box.input_value()) == value
    assert "MessagePack" in page.inner_text("#edit-body-encoding")
    edited = {**value, "order": 8, "note": "fixed"}
    box.fill(json.dumps(edited, indent=2))
    confirm(page, page.locator("#edit-requeue-button"))
    page.wait_for_selector("#letter-status .badge[data-status=requeued]")
    [message] = take(vhost, queue)
    assert message.body == msgpack.packb(edited)
    assert message.content_type == "application/msgpack"
    assert native == []


def test_a_binary_body_is_edited_as_base64_or_hex_and_arrives_byte_for_byte(browser, rabbit):
    url, env, vhost, queue = rabbit
    raw = bytes([0, 255, 254, 16, 128, 7]) + b"bin\xc3\x28" + bytes(range(200, 220))
    [letter_id] = run_script(
        env,
        SEED,
        {
            "letters": [
                letter_row(
                    queue,
                    f"{queue}.dlq",
                    raw,
                    vhost=vhost,
                    props={"content_type": "application/octet-stream"},
                )
            ]
        },
    )
    page, native = login(browser, url)
    page.goto(f"{url}/deadletters/{letter_id}/")
    page.click("summary:has-text('Edit and requeue')")
    box = page.locator("textarea[name=body]")
    choice = page.locator("select[name=body_encoding]")
    assert choice.input_value() == "base64"
    assert base64.b64decode(box.input_value()) == raw
    choice.select_option("hex")
    assert bytes.fromhex(box.input_value()) == raw
    edited = b"\x01" + raw[1:] + b"\x00\xff"
    box.fill(edited.hex())
    confirm(page, page.locator("#edit-requeue-button"))
    page.wait_for_selector("#letter-status .badge[data-status=requeued]")
    [message] = take(vhost, queue)
    assert message.body == edited
    assert message.content_type == "application/octet-stream"
    assert native == []


def test_an_invalid_edit_reopens_the_form_with_the_edits_and_the_error_at_its_field(
    browser, rabbit
):
    url, env, vhost, queue = rabbit
    [letter_id] = run_script(
        env,
        SEED,
        {
            "letters": [
                letter_row(
                    queue,
                    f"{queue}.dlq",
                    msgpack.packb({"n": 1}),
                    vhost=vhost,
                    props={"content_type": "application/msgpack"},
                )
            ]
        },
    )
    page, _native = login(browser, url)
    page.goto(f"{url}/deadletters/{letter_id}/")
    page.click("summary:has-text('Edit and requeue')")
    page.fill("textarea[name=body]", '{"n": 2, "kept": "my edit"}')
    page.fill("textarea[name=headers]", "{not json")
    confirm(page, page.locator("#edit-requeue-button"))
    assert page.locator("details.edit-requeue").get_attribute("open") is not None
    assert page.input_value("textarea[name=body]") == '{"n": 2, "kept": "my edit"}'
    assert page.input_value("textarea[name=headers]") == "{not json"
    error = page.locator("#edit-headers-error")
    assert "not valid JSON" in error.inner_text()
    assert page.locator("textarea[name=headers]").get_attribute("aria-describedby") == (
        "edit-headers-error"
    )
    assert page.locator("#letter-status .badge").get_attribute("data-status") == "pending"

    # A body that is not valid for its encoding: the error sits at the body.
    page.fill("textarea[name=headers]", "{}")
    page.fill("textarea[name=body]", '{"n": 2,')
    confirm(page, page.locator("#edit-requeue-button"))
    assert page.locator("details.edit-requeue").get_attribute("open") is not None
    assert page.input_value("textarea[name=body]") == '{"n": 2,'
    assert "JSON" in page.inner_text("#edit-body-error")
    assert page.locator("#edit-headers-error").count() == 0


# -- the letter's actions, timeline and a very long body ------------------------------


def test_actions_show_the_target_and_the_timeline_tells_what_happened_then(browser, rabbit):
    url, env, vhost, queue = rabbit
    [letter_id] = run_script(
        env, SEED, {"letters": [letter_row(queue, f"{queue}.dlq", b'{"a": 1}', vhost=vhost)]}
    )
    page, _native = login(browser, url)
    page.goto(f"{url}/deadletters/{letter_id}/")
    confirm(page, page.locator("#requeue-button"))
    page.wait_for_selector("#letter-status .badge[data-status=requeued]")
    take(vhost, queue)
    row = page.locator("table.audit tbody tr", has=page.locator("span[title='deadletter.requeue']"))
    assert row.locator("td").nth(2).inner_text() == "Dead-letter requeue"
    detail = row.locator("td").nth(4).inner_text()
    assert "(default)" in detail and queue in detail, detail

    result = run_script(env, COME_BACK, [letter_id])
    assert result["marked"] == 1
    page.reload()
    assert page.locator("#letter-status .badge").get_attribute("data-status") == "failed_again"
    timeline = page.inner_text("ol.timeline")
    assert re.search(rf"requeued by olga to .*{re.escape(queue)}", timeline), timeline
    assert "failed again by" not in timeline.lower(), timeline
    assert f"came back as dead letter #{result['new'][0]}" in timeline, timeline


def test_a_ten_megabyte_letter_page_is_no_wider_than_the_window(browser, rabbit):
    url, env, vhost, queue = rabbit
    body = b"x" * 300_000
    [letter_id] = run_script(
        env,
        SEED,
        {
            "letters": [
                letter_row(
                    queue,
                    f"{queue}.dlq",
                    body,
                    vhost=vhost,
                    body_size=10 * 1024 * 1024,
                    body_truncated=True,
                )
            ]
        },
    )
    page, _native = login(browser, url)
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(f"{url}/deadletters/{letter_id}/")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 1440, width
    box = page.locator("#letter-body").bounding_box()
    assert box["width"] <= 1440 and box["height"] <= 900, box


# -- bulk requeue: the count confirmed is the count taken; came back; rate ------------


@pytest.fixture(scope="module")
def letter_worker(dlq_daphne):
    """A real Celery worker on the served database, watching the same clusters as Daphne."""
    _url, env = dlq_daphne
    log = open(ROOT / "var" / "log" / f"test-ui-letter-worker-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        celery_worker_command(), cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    yield process
    stop_process(process)
    log.close()


def test_the_group_requeue_takes_exactly_the_count_the_user_confirmed(browser, rabbit):
    url, env, vhost, queue = rabbit
    dlq, group = f"{queue}.dlq", uuid.uuid4().hex[:16]
    rows = [letter_row(queue, dlq, b"{}", vhost=vhost, fingerprint=group) for _ in range(3)]
    rows.append(
        letter_row(queue, dlq, b"{}", vhost=vhost, fingerprint=group, status="requeue_failed")
    )
    run_script(env, SEED, {"letters": rows})
    page, _native = login(browser, url)
    page.goto(f"{url}/deadletters/?dlq={quote(dlq)}")
    form = page.locator("table.groups tbody tr[data-group] form")
    open_dry_run(page, form.locator("button", has_text="Requeue group"))
    confirmed = dry_run_total(page)
    # A letter of the same group arrives while the user reads the dry run.
    run_script(
        env, SEED, {"letters": [letter_row(queue, dlq, b"{}", vhost=vhost, fingerprint=group)]}
    )
    requeue_now(page)
    page.wait_for_url("**/jobs/*/")
    assert page.inner_text('#job [data-field="total"]') == str(confirmed)
    assert confirmed == 4
    assert "4 dead letters" in page.inner_text(".job-what")


def test_a_group_requeue_whose_letters_changed_since_confirmation_says_so(browser, rabbit):
    url, env, vhost, queue = rabbit
    dlq, group = f"{queue}.dlq", uuid.uuid4().hex[:16]
    rows = [letter_row(queue, dlq, b"{}", vhost=vhost, fingerprint=group) for _ in range(3)]
    ids = run_script(env, SEED, {"letters": rows})
    page, _native = login(browser, url)
    page.goto(f"{url}/deadletters/?dlq={quote(dlq)}")
    form = page.locator("table.groups tbody tr[data-group] form")
    open_dry_run(page, form.locator("button", has_text="Requeue group"))
    assert dry_run_total(page) == 3
    first = page.url
    # Someone else discards one of them while the user reads the dry run.
    run_script(env, SEED, {"status": [[ids[0], "discarded"]]})
    requeue_now(page)
    assert "/jobs/" not in page.url
    # Nothing started; a fresh dry run of the same group says what changed.
    assert "/deadletters/preview/" in page.url and page.url != first
    assert "You confirmed 3 dead letters, but 2 of them can be requeued now" in page.inner_text(
        "main"
    )
    assert dry_run_total(page) == 2


RUNNING = """() => ({
  state: document.getElementById("job").dataset.state,
  rate: document.querySelector('#job [data-field="rate"]').textContent,
})"""


def test_the_job_page_shows_a_rate_while_running_and_how_many_came_back(
    browser, rabbit, letter_worker
):
    url, env, vhost, queue = rabbit
    dlq, group = f"{queue}.dlq", uuid.uuid4().hex[:16]
    letters = 40
    rows = [letter_row(queue, dlq, b"{}", vhost=vhost, fingerprint=group) for _ in range(letters)]
    ids = run_script(env, SEED, {"letters": rows})
    page, _native = login(browser, url)
    page.goto(f"{url}/deadletters/?dlq={quote(dlq)}")
    form = page.locator("table.groups tbody tr[data-group] form")
    open_dry_run(page, form.locator("button", has_text="Requeue group"))
    requeue_now(page, rate=10)
    page.wait_for_url("**/jobs/*/")
    job_url = page.url
    rates: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        seen = page.evaluate(RUNNING)
        if seen["state"] == "running":
            rates.append(seen["rate"])
        if seen["state"] in ("done", "failed", "cancelled"):
            break
        page.wait_for_timeout(200)
    assert seen["state"] == "done", seen
    assert any(re.match(r"^\d+(\.\d+)?/s$", r) for r in rates), rates
    take(vhost, queue, letters)

    result = run_script(env, COME_BACK, ids[:3])
    assert result["marked"] == 3
    page.goto(job_url)
    came_back = page.locator("#job-came-back")
    assert came_back.is_visible()
    assert came_back.inner_text().startswith("3 of 40 requeued letters came back")
    assert "notice-warn" in came_back.get_attribute("class").split()
    assert page.locator('#job dd[data-count="requeued"]').inner_text() == "40"
    assert page.locator('#job dd[data-count="came_back"]').inner_text() == "3"
