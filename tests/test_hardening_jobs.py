"""One job never wedges the others: queues, threads, short waits, bounded rates.

Real parts, as the ``Procfile`` runs them: Daphne, a Celery worker for long
jobs (a thread per job, on ``<queue>.jobs``) and one for short tasks (solo, on
the default queue), sharing the ``served_db`` database; RabbitMQ in the run's
vhost and Kafka. Dead letters are seeded as captured rows of the default local
clusters (``tests.support.requeue_seed``) and requeued through the JSON API.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import aio_pika
import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from brokers.rabbitmq.connection import accept_every_entity_name
from dashboard.celery import app, jobs_queue
from tests.conftest import KAFKA, PYTHON, ROOT, celery_worker_command, python_env, stop_process
from tests.support import deadletters as h
from tests.support.move import declare, depth, fill, ids_in

pytestmark = [pytest.mark.celery, pytest.mark.redis, pytest.mark.rabbitmq]

SLUG = "local-rabbitmq"
FINAL = ("done", "failed", "cancelled")
SLOW = 0.02  # messages per second: 50 s between two letters


@pytest.fixture(scope="module")
def workers(redis_url, served_db) -> Iterator[None]:
    env = python_env(DATABASE_URL=served_db["DATABASE_URL"])
    suffix = uuid.uuid4().hex[:6]
    processes = []
    for queues in ("tasks", "jobs"):
        log = ROOT / "var" / "log" / f"test-hardening-jobs-{queues}.log"
        with log.open("ab") as out:
            processes.append(
                subprocess.Popen(
                    celery_worker_command("-n", f"mqb-{queues}-{suffix}@%h", queues=queues),
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
    try:
        # Both answer before the tests start (a ping sent to each one's queue).
        for queue in (None, jobs_queue()):
            options = {"queue": queue} if queue else {}
            app.send_task("dashboard.ping", args=["ready"], **options).get(timeout=90)
        yield
    finally:
        for process in processes:
            stop_process(process)


@pytest.fixture
async def http(daphne_url) -> Any:
    """An httpx client logged in to Daphne as olga (operator), sending the CSRF header."""
    async with httpx.AsyncClient(base_url=daphne_url, timeout=20) as client:
        await client.get("/login/")
        response = await client.post(
            "/login/",
            data={
                "username": "olga",
                "password": "browser-pass-1",
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
        )
        assert response.status_code == 302, response.text[:500]
        client.headers["X-CSRFToken"] = client.cookies["csrftoken"]
        client.headers["Referer"] = daphne_url + "/"
        yield client


@pytest.fixture
async def amqp(rabbitmq_vhost) -> Any:
    accept_every_entity_name()
    connection = await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=rabbitmq_vhost
    )
    yield connection
    await connection.close()


def seed(served_db: dict[str, str], kind: str, count: int, *where: str) -> str:
    """``count`` captured letters in the served database; returns their DLQ name."""
    prefix = ["--prefix", uuid.uuid4().hex[:8]]
    subprocess.run(
        [PYTHON, "-m", "tests.support.requeue_seed", kind, *where, "--count", str(count), *prefix],
        cwd=ROOT,
        env=served_db,
        check=True,
        capture_output=True,
    )
    return f"{where[-1]}.dlq" if kind == "rabbitmq" else f"{where[-1]}.DLT"


async def requeue(http: httpx.AsyncClient, dlq: str, rate: float | None = None) -> int:
    body: dict[str, Any] = {"filter": {"dlq": dlq}, "rate_limit": rate}
    response = await http.post("/api/deadletters/requeue-bulk", json=body)
    assert response.status_code == 202, response.text
    return int(response.json()["job"]["id"])


async def job_of(http: httpx.AsyncClient, job_id: int) -> dict[str, Any]:
    job: dict[str, Any] = (await http.get(f"/api/jobs/{job_id}")).json()
    return job


async def wait_for(
    http: httpx.AsyncClient, job_id: int, check: Callable[[dict[str, Any]], bool], seconds: float
) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    job = await job_of(http, job_id)
    while not check(job):
        assert time.monotonic() < deadline, f"job {job_id} never got there: {job}"
        await asyncio.sleep(0.2)
        job = await job_of(http, job_id)
    return job


async def sleeping_requeue(http, amqp, served_db, rabbitmq_vhost) -> tuple[int, str]:
    """A bulk requeue of 2 letters at 0.02/s, caught in its 50 s wait after the first."""
    origin = f"slow-{uuid.uuid4().hex[:8]}"
    await declare(amqp, origin)
    dlq = seed(served_db, "rabbitmq", 2, "--vhost", rabbitmq_vhost, "--queue", origin)
    job_id = await requeue(http, dlq, SLOW)
    await wait_for(http, job_id, lambda j: j["state"] == "running" and j["done"] == 1, 60)
    return job_id, origin


async def test_it_keeps_a_job_cancelled_during_its_rate_limit_wait(
    workers, http, amqp, served_db, rabbitmq_vhost
):
    job_id, origin = await sleeping_requeue(http, amqp, served_db, rabbitmq_vhost)

    cancelled = await http.post(f"/api/jobs/{job_id}/cancel")
    assert cancelled.json()["state"] == "cancelled"
    job = await wait_for(http, job_id, lambda j: j["finished_at"] is not None, 15)

    assert (job["state"], job["done"], job["total"]) == ("cancelled", 1, 2), job["verdict"]
    assert job["result"]["requeued"] == 1 and job["result"]["not_reached"] == 1
    assert job["verdict"].startswith("Cancelled: 1 of 2 requeued")
    # The second letter is never sent, later either.
    await asyncio.sleep(2)
    assert (await job_of(http, job_id))["state"] == "cancelled"
    assert len(await ids_in(amqp, origin)) == 1


async def test_it_runs_a_move_and_answers_a_short_task_while_a_job_sleeps(
    workers, http, amqp, served_db, rabbitmq_vhost
):
    slow_id, _ = await sleeping_requeue(http, amqp, served_db, rabbitmq_vhost)
    source, target = f"side-{uuid.uuid4().hex[:8]}", f"side-{uuid.uuid4().hex[:8]}-dst"
    await declare(amqp, source, target)
    ids = await fill(amqp, source, 5)

    response = await http.post(
        f"/api/clusters/{SLUG}/rabbitmq/move",
        json={"vhost": rabbitmq_vhost, "queue": source, "target_queue": target},
    )
    assert response.status_code == 202, response.text
    move = await wait_for(http, response.json()["id"], lambda j: j["state"] in FINAL, 30)
    # A short task (beat's kind) goes to the other worker and answers at once.
    pong = await asyncio.to_thread(
        lambda: app.send_task("dashboard.ping", args=["short"]).get(timeout=30)
    )

    slow = await job_of(http, slow_id)
    assert (move["state"], move["done"]) == ("done", 5), move["verdict"]
    assert await ids_in(amqp, target) == ids
    assert pong == "pong:short"
    assert (slow["state"], slow["done"]) == ("running", 1), "the slow job still waits"
    await http.post(f"/api/jobs/{slow_id}/cancel")
    await wait_for(http, slow_id, lambda j: j["finished_at"] is not None, 15)


@pytest.mark.kafka
async def test_it_runs_a_kafka_requeue_while_another_job_is_paused(
    workers, http, amqp, served_db, rabbitmq_vhost
):
    paused_id, origin = await sleeping_requeue(http, amqp, served_db, rabbitmq_vhost)
    assert (await http.post(f"/api/jobs/{paused_id}/pause")).json()["state"] == "paused"

    topic = h.create_topic(h.kafka_name("-origin"))
    try:
        kafka_dlq = seed(served_db, "kafka", 2, "--topic", topic)
        other_id = await requeue(http, kafka_dlq)
        other = await wait_for(http, other_id, lambda j: j["state"] in FINAL, 30)
        assert (other["state"], other["result"]["requeued"]) == ("done", 2), other["verdict"]
        assert await asyncio.to_thread(end_offset, topic) == 2
    finally:
        h.delete_topics(topic)

    paused = await job_of(http, paused_id)
    assert (paused["state"], paused["done"]) == ("paused", 1)
    await http.post(f"/api/jobs/{paused_id}/cancel")
    job = await wait_for(http, paused_id, lambda j: j["finished_at"] is not None, 15)
    assert (job["state"], job["result"]["requeued"]) == ("cancelled", 1), job["verdict"]
    assert await depth(amqp, origin) == 1


def end_offset(topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": f"mqb-test-{uuid.uuid4().hex}"})
    try:
        return int(consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)[1])
    finally:
        consumer.close()


@pytest.fixture(scope="module")
def pending_dlq(served_db) -> str:
    """A DLQ with a pending letter, so that a bad rate would get as far as starting a job."""
    return seed(served_db, "rabbitmq", 1, "--vhost", "/", "--queue", f"rates-{uuid.uuid4().hex}")


@pytest.mark.parametrize(
    "rate", ["nan", "NaN", "inf", "-inf", "Infinity", -1, 1e7, "1e400", "fast", True, [1]]
)
async def test_it_refuses_a_rate_that_is_not_a_finite_number_in_bounds(http, pending_dlq, rate):
    for path, body in (
        ("/api/deadletters/requeue-bulk", {"filter": {"dlq": pending_dlq}, "rate_limit": rate}),
        (
            f"/api/clusters/{SLUG}/rabbitmq/move",
            {"vhost": "/", "queue": "a", "target_queue": "b", "rate_limit": rate},
        ),
    ):
        response = await http.post(path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert "rate_limit" in response.json()["error"], response.text


async def test_it_refuses_json_nan_and_infinity_literals_as_a_rate(http, pending_dlq):
    for literal in ("NaN", "Infinity", "-Infinity"):
        response = await http.post(
            "/api/deadletters/requeue-bulk",
            content=f'{{"filter": {{"dlq": "{pending_dlq}"}}, "rate_limit": {literal}}}',
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400, response.text
        assert "rate_limit" in json.loads(response.text)["error"]


async def cancelled_as_it_ends(run: Any) -> Any:
    """A runner whose cancel arrives after its last look at the job."""
    from asgiref.sync import sync_to_async

    from dashboard.jobs import control, runner
    from dashboard.models import Job

    await sync_to_async(control.do_cancel_job)(run.job.pk, user=run.job.created_by)
    return runner.JobOutcome(Job.State.DONE, "Done: 1 of 1.", done=1, total=1)


@pytest.mark.django_db(transaction=True)
def test_it_keeps_a_job_cancelled_when_the_cancel_arrives_as_it_ends(operator, monkeypatch):
    from dashboard.jobs import control, runner

    monkeypatch.setitem(
        control.RUNNERS,
        "test.ends",
        control.JobKind(f"{__name__}.cancelled_as_it_ends", "test", "jobs/_move.html"),
    )
    monkeypatch.setattr(control, "enqueue", lambda job: None)
    job = control.do_start_job(
        kind="test.ends", cluster=None, parameters={}, user=operator, target="job"
    )

    assert runner.run_job(job.pk, job.task_id) == "cancelled"
    finished = control.get_job(job.pk)
    assert (finished.state, finished.done) == ("cancelled", 1)
    assert finished.verdict == "Cancelled as it ended. Done: 1 of 1."
