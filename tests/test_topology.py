"""The production topology: real nginx in front of two real Daphne, the tasks and jobs workers.

The processes are ops/Procfile.prod's own lines (web1, web2, tasks, jobs) under
scripts/supervise.py, sharing one migrated PostgreSQL database of their own
(``postgres_database``) and this run's Redis channel layer and Celery queues;
ops/nginx.sh runs nginx in front of them on a free port. nginx's access log
names the Daphne that answered each request (``upstream=``), which is how the
tests see that both answered. The collectors are left out: live updates here
are the job progress the jobs worker publishes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import aio_pika
import httpx
import pytest

from brokers.rabbitmq.connection import accept_every_entity_name
from dashboard.jobs.tasks import ping
from tests.settings import RUN_ID
from tests.support.move import declare, fill, ids_in
from tests.support.served_db import postgres_database, query, served_env
from tests.support.topology import (
    Topology,
    WebSocket,
    access_log_upstreams,
    listening_pid,
    port_open,
    start_topology,
    stop_topology,
)

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.rabbitmq]

SLUG = "local-rabbitmq"
PASSWORD = "browser-pass-1"


@pytest.fixture(scope="module")
def topology(redis_url, rabbitmq_vhost) -> Iterator[Topology]:
    env = served_env(postgres_database("topology"))
    running = start_topology(env, ["web1", "web2", "tasks", "jobs"], RUN_ID)
    try:
        yield running
    finally:
        stop_topology(running)


@contextlib.contextmanager
def log_in(topology: Topology) -> Iterator[httpx.Client]:
    """An httpx client logged in through nginx as olga (operator), sending the CSRF header."""
    with httpx.Client(base_url=topology.url, timeout=30) as client:
        yield _logged_in(client, topology)


def _logged_in(client: httpx.Client, topology: Topology) -> httpx.Client:
    client.get("/login/")
    response = client.post(
        "/login/",
        data={
            "username": "olga",
            "password": PASSWORD,
            "csrfmiddlewaretoken": client.cookies["csrftoken"],
        },
        headers={"Origin": topology.url},
    )
    assert response.status_code == 302, response.text[:500]
    client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
    client.headers["Origin"] = topology.url
    return client


def log_size(topology: Topology) -> int:
    return topology.access_log.stat().st_size if topology.access_log.exists() else 0


def wait_until(check: Any, seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s")


def backends(topology: Topology) -> set[str]:
    return {f"127.0.0.1:{port}" for port in topology.web_ports}


def test_it_logs_in_through_nginx_and_both_daphne_answer_pages_and_the_api(topology):
    start = log_size(topology)
    with log_in(topology) as client:
        for _ in range(6):
            for path in ("/", "/deadletters/", "/api/alerts/rules"):
                response = client.get(path)
                # 200, not the login page's redirect: the session holds on either Daphne.
                assert response.status_code == 200, (path, response.text[:300])
        assert client.get("/api/alerts/rules").json()["rules"] == []
    answered = wait_until(
        lambda: {up for _, status, up in access_log_upstreams(topology.access_log, "/", start)},
        10,
        "requests in the access log",
    )
    assert answered == backends(topology)


def test_static_files_come_from_collectstatic_and_pages_are_gzipped_once(topology):
    # Written after the processes started: only nginx, reading STATIC_ROOT, knows it.
    probe = topology.state / "staticfiles" / f"probe-{RUN_ID}.txt"
    probe.write_text("served by nginx\n")
    probe.chmod(0o644)
    with httpx.Client(base_url=topology.url, timeout=30) as client:
        response = client.get(f"/static/{probe.name}")
        assert response.status_code == 200 and response.text == "served by nginx\n"
        css = client.get("/static/css/app.css", headers={"Accept-Encoding": "gzip"})
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert css.headers["cache-control"] == "public, max-age=60"
        assert css.text == (topology.state / "staticfiles" / "css" / "app.css").read_text()
        # The login page (over MQB_GZIP_MIN_BYTES) is gzipped by the app, once: nginx
        # passes it on as it is (gzipped twice, it would not decode to the page).
        page = client.get("/login/", headers={"Accept-Encoding": "gzip"})
        assert page.status_code == 200 and page.headers["content-encoding"] == "gzip"
        assert "<form" in page.text
        raw = client.get("/login/", headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in raw.headers and "<form" in raw.text


def test_a_form_post_through_nginx_passes_csrf_and_another_origin_does_not(topology):
    with log_in(topology) as client:
        ok = client.post("/logout/")
        assert ok.status_code == 302
    with log_in(topology) as client:
        other = f"http://127.0.0.1:{topology.web_ports[0]}"
        refused = client.post("/logout/", headers={"Origin": other})
        assert refused.status_code == 403


def run_async(coroutine: Any) -> Any:
    """Run ``coroutine`` to its end in a thread of its own (Playwright's loop holds this one)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


async def _prepare_queue(vhost: str, source: str, target: str, count: int) -> list[str]:
    accept_every_entity_name()
    connection = await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=vhost
    )
    await declare(connection, source, target)
    ids = await fill(connection, source, count)
    await connection.close()
    return ids


async def _ids_in(vhost: str, queue: str) -> list[str]:
    connection = await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=vhost
    )
    try:
        return await ids_in(connection, queue)
    finally:
        await connection.close()


def test_a_long_job_sends_progress_to_websockets_on_both_daphne_and_never_delays_short_tasks(
    topology, rabbitmq_vhost, unique_name
):
    source, target = f"{unique_name}-src", f"{unique_name}-dst"
    run_async(_prepare_queue(rabbitmq_vhost, source, target, 1000))
    # The tasks worker is up (it may start slower than the web processes).
    assert ping.delay("ready").get(timeout=120) == "pong:ready"
    with log_in(topology) as client:
        response = client.post(
            f"/api/clusters/{SLUG}/rabbitmq/move",
            json={
                "vhost": rabbitmq_vhost,
                "queue": source,
                "target_queue": target,
                "rate_limit": 20,
            },
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert response.status_code == 202, response.text
        job_id = response.json()["id"]
        wait_until(
            lambda: client.get(f"/api/jobs/{job_id}").json()["done"] > 0, 120, "the job running"
        )
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        start = log_size(topology)
        # Two websockets at once: least_conn gives the second the other Daphne.
        sockets = [
            WebSocket(
                topology.nginx_port, f"/ws/jobs/{job_id}/", cookie=cookie, origin=topology.url
            )
            for _ in range(2)
        ]
        # A page of another origin (here: a Daphne's own port) gets no websocket.
        foreign = WebSocket(
            topology.nginx_port,
            f"/ws/jobs/{job_id}/",
            cookie=cookie,
            origin=f"http://127.0.0.1:{topology.web_ports[0]}",
        )
        foreign.close()
        assert foreign.status == 403
        try:
            assert [s.status for s in sockets] == [101, 101]
            seen = [[s.receive_json()["job"]["done"]] for s in sockets]
            # Short tasks on the tasks queue, answered while the job still runs.
            results = [ping.delay(f"{RUN_ID}-{i}") for i in range(8)]
            assert [r.get(timeout=60) for r in results] == [f"pong:{RUN_ID}-{i}" for i in range(8)]
            job = client.get(f"/api/jobs/{job_id}").json()
            assert job["state"] == "running" and job["done"] < 1000, job
            # Both sockets get the progress the jobs worker publishes.
            for socket_, done in zip(sockets, seen, strict=True):
                while done[-1] <= done[0]:
                    done.append(socket_.receive_json()["job"]["done"])
        finally:
            for socket_ in sockets:
                socket_.close()
        cancelled = client.post(f"/api/jobs/{job_id}/cancel")
        assert cancelled.json()["state"] == "cancelled"
        job = wait_until(
            lambda: (j := client.get(f"/api/jobs/{job_id}").json())["finished_at"] and j,
            30,
            "the cancelled job ending",
        )
    ws_upstreams = wait_until(
        lambda: {up for _, _, up in access_log_upstreams(topology.access_log, "/ws/", start)},
        10,
        "the websockets in the access log",
    )
    assert ws_upstreams == backends(topology)
    moved = run_async(_ids_in(rabbitmq_vhost, target))
    assert len(moved) == job["done"] and len(set(moved)) == len(moved)
    # The audit entry names the client nginx saw, not the address it claimed.
    rows = query(
        topology.env["DATABASE_URL"],
        "SELECT client_ip FROM dashboard_auditentry WHERE target LIKE %s",
        (f"%{source}%",),
    )
    assert rows and {str(ip) for (ip,) in rows} == {"127.0.0.1"}


def test_kill_9_of_one_daphne_loses_no_get_and_it_comes_back(topology):
    victim = topology.web_ports[0]
    pid = listening_pid(victim)
    with log_in(topology) as client:
        os.kill(pid, signal.SIGKILL)
        start = log_size(topology)
        statuses = [client.get("/api/alerts/rules").status_code for _ in range(30)]
        assert statuses == [200] * 30
        survivors = {up for _, _, up in access_log_upstreams(topology.access_log, "/api/", start)}
        # Requests that tried the dead one first name both ("a, b"); every one was answered.
        assert f"127.0.0.1:{topology.web_ports[1]}" in " ".join(survivors)
        # scripts/supervise.py restarts it; nginx tries it again after fail_timeout.
        wait_until(lambda: port_open(victim) and listening_pid(victim) != pid, 90, "a new web1")
        back = log_size(topology)

        def victim_answers() -> bool:
            assert client.get("/api/alerts/rules").status_code == 200
            rows = access_log_upstreams(topology.access_log, "/api/", back)
            return any(up == f"127.0.0.1:{victim}" and status == 200 for _, status, up in rows)

        wait_until(victim_answers, 60, "the restarted Daphne answering through nginx")


@pytest.mark.browser
def test_a_browser_logs_in_through_nginx_starts_a_job_and_sees_it_live(
    topology, browser, rabbitmq_vhost, unique_name
):
    source, target = f"{unique_name}-src", f"{unique_name}-dst"
    run_async(_prepare_queue(rabbitmq_vhost, source, target, 300))
    page = browser.new_page()
    try:
        page.goto(topology.url + "/login/")
        page.fill("input[name=username]", "olga")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(topology.url + "/")
        query_string = httpx.QueryParams({"vhost": rabbitmq_vhost, "queue": source})
        page.goto(f"{topology.url}/rabbitmq/{SLUG}/move?{query_string}")
        page.fill("input[name=target_queue]", target)
        page.fill("input[name=rate_limit]", "100")
        page.click(".move-form button[type=submit]")
        page.wait_for_selector('#live-state[data-state="open"]', timeout=20_000)
        page.wait_for_function(
            "() => { const b = document.getElementById('job-progress');"
            " return b.max === 300 && b.value > 0 && b.value < 300; }",
            timeout=30_000,
        )
        page.wait_for_selector('#job[data-state="done"]', timeout=60_000)
        assert page.locator("#job-progress").evaluate("b => b.value") == 300
    finally:
        page.close()
    assert len(run_async(_ids_in(rabbitmq_vhost, target))) == 300
