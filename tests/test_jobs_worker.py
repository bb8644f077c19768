"""End to end: Daphne takes the request, a real Celery worker runs the move, RabbitMQ moves.

Daphne and the worker share the ``served_db`` database (not the test's own,
which they never see); both watch the default local
RabbitMQ (``local-rabbitmq``), and the move happens in the test run's vhost.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from typing import Any

import aio_pika
import httpx
import pytest

from brokers.rabbitmq.connection import accept_every_entity_name
from tests.conftest import ROOT, celery_worker_command, python_env, stop_process
from tests.support.move import declare, depth, fill, ids_in

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.rabbitmq]

SLUG = "local-rabbitmq"
FINAL = ("done", "failed", "cancelled")


@pytest.fixture(scope="module")
def worker(redis_url, served_db):

    log = open(ROOT / "var" / "log" / "test-jobs-worker.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        celery_worker_command(),
        cwd=ROOT,
        env=python_env(DATABASE_URL=served_db["DATABASE_URL"]),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    yield process
    stop_process(process)
    log.close()


@pytest.fixture
async def http(daphne_url):
    """An httpx client logged in to Daphne as olga (operator), sending the CSRF header."""
    async with httpx.AsyncClient(base_url=daphne_url, timeout=10) as client:
        await client.get("/login/")
        token = client.cookies["csrftoken"]
        response = await client.post(
            "/login/",
            data={"username": "olga", "password": "browser-pass-1", "csrfmiddlewaretoken": token},
        )
        assert response.status_code == 302, response.text[:500]
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        client.headers["Referer"] = daphne_url + "/"
        yield client


@pytest.fixture
async def amqp(rabbitmq_vhost):
    accept_every_entity_name()
    connection = await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=rabbitmq_vhost
    )
    yield connection
    await connection.close()


async def wait_for(http, job_id: int, check, seconds: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
        if check(job):
            return job
        await asyncio.sleep(0.1)
    raise AssertionError(f"job {job_id} never got there: {job}")


async def test_a_move_job_runs_in_the_real_worker(worker, http, amqp, rabbitmq_vhost, unique_name):
    source, target = f"{unique_name} src é", f"{unique_name} dst"
    await declare(amqp, source, target)
    ids = await fill(amqp, source, 3000)
    response = await http.post(
        f"/api/clusters/{SLUG}/rabbitmq/move",
        json={"vhost": rabbitmq_vhost, "queue": source, "target_queue": target},
    )
    assert response.status_code == 202, response.text
    job = await wait_for(http, response.json()["id"], lambda j: j["state"] in FINAL)
    assert worker.poll() is None
    assert job["state"] == "done", job["verdict"]
    assert (job["done"], job["total"]) == (3000, 3000)
    assert job["result"]["reason"] == "completed" and job["result"]["in_doubt"] == 0
    assert await ids_in(amqp, target) == ids and await depth(amqp, source) == 0


async def test_pause_resume_and_cancel_reach_the_running_worker(
    worker, http, amqp, rabbitmq_vhost, unique_name
):
    source, target = f"{unique_name}-src", f"{unique_name}-dst"
    await declare(amqp, source, target)
    ids = await fill(amqp, source, 3000)
    response = await http.post(
        f"/api/clusters/{SLUG}/rabbitmq/move",
        json={"vhost": rabbitmq_vhost, "queue": source, "target_queue": target, "rate_limit": 500},
    )
    job_id = response.json()["id"]
    await wait_for(http, job_id, lambda j: j["state"] == "running" and j["done"] >= 100)
    assert (await http.post(f"/api/jobs/{job_id}/pause")).json()["state"] == "paused"
    # Within about a second the worker stops moving; then the count holds still.
    await asyncio.sleep(1.5)
    held = (await http.get(f"/api/jobs/{job_id}")).json()["done"]
    await asyncio.sleep(1.0)
    assert (await http.get(f"/api/jobs/{job_id}")).json()["done"] == held < 3000
    assert (await http.post(f"/api/jobs/{job_id}/resume")).json()["state"] == "running"
    await wait_for(http, job_id, lambda j: j["done"] >= held + 100)
    assert (await http.post(f"/api/jobs/{job_id}/cancel")).json()["state"] == "cancelled"
    job = await wait_for(http, job_id, lambda j: j["finished_at"] is not None, seconds=15)
    assert job["state"] == "cancelled" and "Cancelled" in job["verdict"]
    moved, left = await ids_in(amqp, target), await ids_in(amqp, source)
    # Exact: the count is what left the source, and what reached the target.
    assert len(moved) == job["done"] and moved == ids[: job["done"]]
    assert sorted(left) == sorted(ids[job["done"] :])


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.mark.browser
def test_the_job_page_shows_progress_live_in_a_browser(
    worker, daphne_url, rabbitmq_vhost, unique_name
):
    from playwright.sync_api import sync_playwright

    source, target = f"{unique_name}-src <b>", f"{unique_name}-dst"

    async def prepare() -> None:
        accept_every_entity_name()
        connection = await aio_pika.connect(
            host="127.0.0.1", login="guest", password="guest", virtualhost=rabbitmq_vhost
        )
        await declare(connection, source, target)
        await fill(connection, source, 600)
        await connection.close()

    asyncio.run(prepare())
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        page = browser.new_page()
        page.goto(daphne_url + "/login/")
        page.fill("input[name=username]", "olga")
        page.fill("input[name=password]", "browser-pass-1")
        page.click("button[type=submit]")
        page.wait_for_url(daphne_url + "/")
        query = httpx.QueryParams({"vhost": rabbitmq_vhost, "queue": source})
        page.goto(f"{daphne_url}/rabbitmq/{SLUG}/move?{query}")
        assert page.input_value("input[name=source]") == source
        page.fill("input[name=target_queue]", target)
        page.fill("input[name=rate_limit]", "300")
        page.click(".move-form button[type=submit]")
        page.wait_for_selector('#live-state[data-state="open"]', timeout=10_000)
        # The bar moves while the worker reports, then the verdict appears.
        page.wait_for_function(
            "() => { const b = document.getElementById('job-progress');"
            " return b.max === 600 && b.value > 0 && b.value < 600; }",
            timeout=15_000,
        )
        page.wait_for_selector('#job[data-state="done"]', timeout=20_000)
        assert page.locator("#job-progress").evaluate("b => b.value") == 600
        verdict = page.inner_text("[data-field=verdict]")
        assert "Moved 600 messages" in verdict and "<b>" in verdict
        assert page.locator("form[data-when] button:visible").count() == 0
        browser.close()
