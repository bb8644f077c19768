"""The job framework and the move job: services, pages, API, websocket, a run in this process."""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import aio_pika
import pytest
from channels.testing import WebsocketCommunicator
from django.conf import settings

from brokers.rabbitmq.connection import accept_every_entity_name
from dashboard.asgi import application
from dashboard.core.clusters import sync_cluster_rows
from dashboard.core.websockets import UNAUTHENTICATED
from dashboard.jobs import control, runner
from dashboard.jobs.websockets import NO_SUCH_JOB
from dashboard.models import AuditEntry, Job
from tests.support.move import declare, depth, fill, ids_in

pytestmark = [pytest.mark.django_db, pytest.mark.rabbitmq]

ORIGIN = (b"origin", b"http://localhost")
HOST = (b"host", b"localhost")  # the Origin must be the site the socket was opened on
SLUG = "test-rabbitmq"


@pytest.fixture
def queued(monkeypatch):
    """Jobs are queued into this list instead of Redis: no stray task for a real worker."""
    sent: list[Job] = []
    monkeypatch.setattr(control, "enqueue", sent.append)
    return sent


@pytest.fixture
async def amqp(rabbitmq_vhost):
    accept_every_entity_name()
    connection = await aio_pika.connect(
        host="127.0.0.1", login="guest", password="guest", virtualhost=rabbitmq_vhost
    )
    yield connection
    await connection.close()


@pytest.fixture
def queues(unique_name, rabbitmq_vhost):
    """Two fresh queues, source and target, declared in the test vhost."""
    source, target = f"{unique_name}-src <script>", f"{unique_name}-dst"

    async def make() -> None:
        accept_every_entity_name()
        connection = await aio_pika.connect(
            host="127.0.0.1", login="guest", password="guest", virtualhost=rabbitmq_vhost
        )
        await declare(connection, source, target)
        await connection.close()

    asyncio.run(make())
    return source, target


def start(client, vhost: str, source: str, target: str, **extra):
    body = {"vhost": vhost, "queue": source, "target_queue": target, **extra}
    return client.post(
        f"/api/clusters/{SLUG}/rabbitmq/move", json.dumps(body), content_type="application/json"
    )


def test_viewers_may_not_move_messages(client, viewer, use_clusters, rabbitmq_vhost, queues):
    client.force_login(viewer)
    source, target = queues
    assert start(client, rabbitmq_vhost, source, target).status_code == 403
    page = client.get(f"/rabbitmq/{SLUG}/move", {"vhost": rabbitmq_vhost, "queue": source})
    assert page.status_code == 403
    response = client.post(
        f"/rabbitmq/{SLUG}/move",
        {"vhost": rabbitmq_vhost, "source": source, "target_queue": target},
    )
    assert response.status_code == 403
    assert not Job.objects.exists()
    refused = AuditEntry.objects.filter(action="rabbitmq.move", outcome="refused")
    assert refused.count() == 2
    assert {e.username for e in refused} == {"vera"}


def test_an_operator_starts_a_move_job(
    client, operator, use_clusters, rabbitmq_vhost, queues, queued
):
    client.force_login(operator)
    source, target = queues
    response = start(client, rabbitmq_vhost, source, target, count=5, rate_limit=100)
    assert response.status_code == 202, response.content
    data = response.json()
    job = Job.objects.get(pk=data["id"])
    assert (job.kind, job.state, job.rate_limit) == ("rabbitmq.move", "queued", 100)
    assert job.parameters["target"] == {"queue": target} and job.parameters["count"] == 5
    assert job.created_by == operator and job.task_id
    assert queued == [job]
    entry = AuditEntry.objects.get(action="rabbitmq.move")
    assert entry.outcome == "ok" and entry.username == "otto" and entry.client_ip == "127.0.0.1"
    assert entry.parameters["job"] == job.pk and entry.parameters["source"] == source
    assert data["url"] == f"/jobs/{job.pk}/"


def test_the_form_starts_a_job_and_shows_its_page(
    client, operator, use_clusters, rabbitmq_vhost, queues, queued
):
    client.force_login(operator)
    source, target = queues
    form = client.get(f"/rabbitmq/{SLUG}/move", {"vhost": rabbitmq_vhost, "queue": source})
    assert form.status_code == 200
    assert "&lt;script&gt;" in form.content.decode() and "<script>" not in source[:-8]
    response = client.post(
        f"/rabbitmq/{SLUG}/move?vhost=x",
        {
            "vhost": rabbitmq_vhost,
            "source": source,
            "target_kind": "exchange",
            "target_exchange": "amq.direct",
            "routing_key": target,
            "count": "",
        },
    )
    job = Job.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/jobs/{job.pk}/"
    assert job.parameters["target"] == {"exchange": "amq.direct", "routing_key": target}
    assert job.parameters["count"] is None
    page = client.get(response["Location"]).content.decode()
    assert "All messages of queue" in page and "&lt;script&gt;" in page
    assert 'id="job-data"' in page and "/static/js/jobs.js" in page


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"target_queue": ""}, "either a target queue or a target exchange"),
        ({"target_exchange": "amq.direct"}, "either a target queue or a target exchange"),
        ({"count": 0}, "more than 0"),
        ({"count": "lots"}, "whole number"),
        ({"count": 2.5}, "whole number"),
        ({"rate_limit": -1}, "more than 0"),
        ({"rate_limit": True}, "must be a number"),
        ({"queue": ""}, "source queue is required"),
        ({"target_queue": "x" * 256}, "longer than 255 bytes"),
    ],
)
def test_bad_input_gets_a_clear_answer(
    client, operator, use_clusters, rabbitmq_vhost, queues, queued, change, message
):
    client.force_login(operator)
    source, target = queues
    body = {"vhost": rabbitmq_vhost, "queue": source, "target_queue": target, **change}
    response = client.post(
        f"/api/clusters/{SLUG}/rabbitmq/move", json.dumps(body), content_type="application/json"
    )
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not Job.objects.exists()


def test_the_source_as_target_and_missing_queues_are_refused(
    client, operator, use_clusters, rabbitmq_vhost, queues, queued
):
    client.force_login(operator)
    source, target = queues
    same = start(client, rabbitmq_vhost, source, source)
    assert same.status_code == 400 and "target queue is the source" in same.json()["error"]
    missing = start(client, rabbitmq_vhost, source, target + "-nope")
    assert missing.status_code == 404 and "does not exist" in missing.json()["error"]
    form = client.post(
        f"/rabbitmq/{SLUG}/move",
        {"vhost": rabbitmq_vhost, "source": "nope", "target_queue": target},
    )
    assert form.status_code == 404 and "does not exist" in form.content.decode()
    assert not Job.objects.exists() and not queued


def test_a_read_only_cluster_refuses_moves(
    client, operator, use_clusters, rabbitmq_config, rabbitmq_vhost, queues, queued
):
    use_clusters(replace(rabbitmq_config, read_only=True))
    client.force_login(operator)
    source, target = queues
    response = start(client, rabbitmq_vhost, source, target)
    assert response.status_code == 409 and "read-only" in response.json()["error"]


def make_job(user, state: str = Job.State.RUNNING, **fields) -> Job:
    fields.setdefault(
        "parameters", {"vhost": "/", "source": "a", "target": {"queue": "b"}, "count": None}
    )
    return Job.objects.create(kind="rabbitmq.move", created_by=user, state=state, **fields)


def test_pause_resume_and_cancel_change_state_and_are_audited(client, operator):
    job = make_job(operator, started_at="2024-01-01T00:00:00Z")
    client.force_login(operator)
    assert client.post(f"/api/jobs/{job.pk}/pause").json()["state"] == "paused"
    assert client.post(f"/api/jobs/{job.pk}/pause").status_code == 409
    assert client.post(f"/api/jobs/{job.pk}/resume").json()["state"] == "running"
    response = client.post(f"/jobs/{job.pk}/cancel")
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.state == "cancelled" and job.finished_at is None  # the worker finishes it
    again = client.post(f"/jobs/{job.pk}/resume", follow=True)
    assert "cannot be resumed" in again.content.decode()
    actions = list(AuditEntry.objects.order_by("pk").values_list("action", "outcome"))
    assert actions == [("job.pause", "ok"), ("job.resume", "ok"), ("job.cancel", "ok")]


def test_cancelling_a_queued_job_ends_it_at_once(client, operator):
    job = make_job(operator, state=Job.State.QUEUED)
    client.force_login(operator)
    data = client.post(f"/api/jobs/{job.pk}/cancel").json()
    assert data["state"] == "cancelled" and data["finished_at"]
    assert data["verdict"] == "Cancelled before it started."


def test_viewers_may_watch_but_not_steer_jobs(client, viewer, operator):
    job = make_job(operator)
    client.force_login(viewer)
    assert client.get(f"/api/jobs/{job.pk}").json()["state"] == "running"
    assert client.get("/api/jobs").json()["jobs"][0]["id"] == job.pk
    page = client.get(f"/jobs/{job.pk}/").content.decode()
    # No control form (the label table every page carries names the "Paused" state).
    assert "job-controls" not in page and ">Pause</button>" not in page and "/pause" not in page
    assert client.post(f"/api/jobs/{job.pk}/cancel").status_code == 403
    assert client.post(f"/jobs/{job.pk}/cancel").status_code == 403
    job.refresh_from_db()
    assert job.state == "running"
    assert AuditEntry.objects.filter(action="job.cancel", outcome="refused").count() == 2
    assert client.get("/api/jobs/999999").status_code == 404
    assert client.get("/jobs/999999/").status_code == 404


def test_the_jobs_list_escapes_names(client, viewer, operator):
    make_job(operator, parameters={"source": "<img src=x>"})
    client.force_login(viewer)
    page = client.get("/jobs/").content.decode()
    assert "&lt;img src=x&gt;" in page and "<img src=x>" not in page


def test_a_task_for_another_job_is_ignored(operator):
    job = make_job(operator, state=Job.State.QUEUED, task_id="the-real-one")
    assert runner.run_job(job.pk, task_id="a-stale-delivery") == "ignored"
    assert runner.run_job(987654, task_id="x") == "ignored"
    job.refresh_from_db()
    assert job.state == "queued"


def test_a_move_redelivered_after_a_worker_died_says_what_is_known(operator, use_clusters):
    job = make_job(operator, started_at="2024-01-01T00:00:00Z", done=40, total=100)
    assert runner.run_job(job.pk, task_id=job.task_id) == "failed"
    job.refresh_from_db()
    assert "worker stopped during this move" in job.verdict and "40 of 100" in job.verdict
    assert job.finished_at is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
async def test_a_job_streams_its_progress_over_the_websocket(
    client, operator, viewer, use_clusters, rabbitmq_vhost, amqp, unique_name, redis_url
):
    from asgiref.sync import sync_to_async

    source, target = f"{unique_name}-src", f"{unique_name}-dst"
    await declare(amqp, source, target)
    ids = await fill(amqp, source, 300)
    await sync_to_async(client.force_login)(viewer)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [HOST, ORIGIN, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]

    cluster = (await sync_to_async(sync_cluster_rows)())[SLUG]
    job = await sync_to_async(make_job)(
        operator,
        cluster=cluster,
        state=Job.State.QUEUED,
        rate_limit=200,
        parameters={
            "vhost": rabbitmq_vhost,
            "source": source,
            "target": {"queue": target},
            "count": None,
        },
    )
    communicator = WebsocketCommunicator(application, f"/ws/jobs/{job.pk}/", headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    first = await communicator.receive_json_from(timeout=5)
    assert first["type"] == "job.progress" and first["job"]["state"] == "queued"

    running = asyncio.create_task(asyncio.to_thread(runner.run_job, job.pk, job.task_id))
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["state"] not in ("done", "failed"):
        seen.append((await communicator.receive_json_from(timeout=10))["job"])
    assert await running == "done", seen[-1]["verdict"]
    final = seen[-1]
    assert (final["done"], final["total"]) == (300, 300)
    assert "Moved 300 messages" in final["verdict"]
    assert any(0 < j["done"] < 300 for j in seen), "no progress in between"
    assert any(j["state"] == "running" and j["rate"] for j in seen)
    assert await ids_in(amqp, target) == ids and await depth(amqp, source) == 0
    await communicator.disconnect()
    finished = await sync_to_async(AuditEntry.objects.get)(action="rabbitmq.move.finished")
    assert finished.parameters["moved"] == 300 and finished.outcome == "ok"


@pytest.mark.django_db(transaction=True)
@pytest.mark.redis
async def test_the_job_websocket_needs_a_session_and_a_job(client, viewer, redis_url):
    from asgiref.sync import sync_to_async

    anonymous = WebsocketCommunicator(application, "/ws/jobs/1/", headers=[HOST, ORIGIN])
    connected, code = await anonymous.connect(timeout=10)
    assert not connected and code == UNAUTHENTICATED
    await sync_to_async(client.force_login)(viewer)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    headers = [HOST, ORIGIN, (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())]
    missing = WebsocketCommunicator(application, "/ws/jobs/424242/", headers=headers)
    connected, code = await missing.connect(timeout=10)
    assert not connected and code == NO_SUCH_JOB
