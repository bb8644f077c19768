"""Dead-lettered Celery tasks, end to end: a real demo worker, RabbitMQ and Redis.

A task that fails (the demo's ``/once/`` images fail the first time) is
rejected into the demo's DLQ, captured by the real capture engine, shown
decoded on its letter page with the exception and traceback from the Redis
result backend, and *Retry task* sends it back to its queue, where the same
worker runs it again: with the same task id, then (another letter) with a new
one. A pickled task message is shown as bytes and never unpickled.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import redis
from asgiref.sync import sync_to_async

from brokers.base.deadletters import RequeueTarget
from brokers.rabbitmq.deadletters import requeue as rabbit_requeue
from dashboard.deadletters import celery_tasks
from dashboard.deadletters.requeue import stored_letter
from dashboard.models import AuditEntry, DeadLetter
from demo.celery_app import declare_topology, make_app
from demo.topology import RESIZE_TASK, Names
from tests.conftest import PYTHON, ROOT, python_env, stop_process
from tests.settings import RUN_ID
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.rabbitmq,
    pytest.mark.redis,
    pytest.mark.celery,
]


@pytest.fixture
def prefix(unique_name: str) -> str:
    return f"{unique_name}-"


@pytest.fixture
def amqp_url(rabbitmq_vhost: str) -> str:
    return f"amqp://guest:guest@127.0.0.1:5672/{quote(rabbitmq_vhost, safe='')}"


@pytest.fixture
def backend(settings, redis_url: str) -> redis.Redis:
    settings.MQB_DLQ_CELERY_RESULT_BACKEND = redis_url
    return redis.Redis.from_url(redis_url)


@pytest.fixture
def demo_worker(tmp_path: Path, amqp_url: str, prefix: str, redis_url: str):
    """The demo's Celery worker on this test's queue, storing results in Redis."""
    log = tmp_path / "worker.log"
    process = subprocess.Popen(
        [
            PYTHON, "-m", "celery", "-A", "demo.celery_app", "worker", "--pool=solo",
            "--loglevel=INFO", "-Q", f"{prefix}celery-tasks", "--without-mingle",
            "--without-gossip", "--hostname", f"demo-dlq-{RUN_ID}@%h",
        ],
        cwd=ROOT,
        env=python_env(DEMO_AMQP_URL=amqp_url, DEMO_PREFIX=prefix, DEMO_RESULT_BACKEND=redis_url),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    yield log
    stop_process(process)


def send_tasks(amqp_url: str, prefix: str, image_ids: list[str]) -> list[str]:
    """Publish one resize task per image (``/once/`` URLs: each fails the first time)."""
    app = make_app(amqp_url, prefix)
    task = app.tasks[RESIZE_TASK]
    with app.connection_for_write() as connection:
        declare_topology(app, Names(prefix), connection)
        producer = connection.Producer()
        sent = [
            task.apply_async(
                [image_id, f"https://img.example/once/{image_id}.jpg", [64, 128]],
                {"quality": 70},
                producer=producer,
                ignore_result=False,  # this publisher has no backend; the worker has one
            ).id
            for image_id in image_ids
        ]
    return sent


def state(client: redis.Redis, task_id: str) -> dict[str, Any]:
    raw = client.get(f"celery-task-meta-{task_id}")
    return json.loads(raw) if raw else {}


async def wait_state(client: redis.Redis, task_id: str, wanted: str, log: Path) -> dict[str, Any]:
    async def check() -> dict[str, Any] | None:
        found = state(client, task_id)
        return found if found.get("status") == wanted else None

    try:
        result: dict[str, Any] = await h.async_wait_for(check, 60, f"{task_id} {wanted}")
    except AssertionError:
        tail = await sync_to_async(log.read_text)(errors="replace")
        raise AssertionError(tail[-3000:]) from None
    return result


@sync_to_async
def letter_of(dlq: str, task_id: str) -> DeadLetter:
    return DeadLetter.objects.get(dlq=dlq, failure_details__task__id=task_id)


@sync_to_async
def audit_of(letter: DeadLetter) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(target=f"deadletter:{letter.pk}").order_by("time"))


async def test_a_failed_task_is_shown_decoded_and_retry_task_runs_it_again(
    use_clusters, rabbitmq_vhost, amqp_url, prefix, backend, demo_worker, async_client, operator
):
    dlq = f"{prefix}dlq"
    same_image, new_image = f"img-{uuid.uuid4().hex[:6]}", f"img-{uuid.uuid4().hex[:6]}"
    first, second = await sync_to_async(send_tasks)(amqp_url, prefix, [same_image, new_image])
    for task_id in (first, second):
        failed = await wait_state(backend, task_id, "FAILURE", demo_worker)
        assert failed["result"]["exc_type"] == "ObjectStoreTimeout"

    target = await flow.manage("test-rabbitmq", rabbitmq_vhost, dlq)

    async def both_captured() -> bool:
        return await flow.stored_count(dlq) == 2

    await flow.capture_until(target, both_captured)
    letter = await letter_of(dlq, first)
    assert letter.origin_queue == f"{prefix}celery-tasks"

    # The letter page shows the task decoded, and why it failed.
    await async_client.aforce_login(operator)
    page = (await async_client.get(f"/deadletters/{letter.pk}/")).content.decode()
    section = page[page.index('id="celery-task"') : page.index("Failure timeline")]
    assert RESIZE_TASK in section and first in section
    assert same_image in section and "https://img.example/once/" in section
    assert "&quot;quality&quot;: 70" in section
    assert "demo.celery_app.ObjectStoreTimeout" in section
    assert "object store timed out" in section
    assert 'id="task-traceback"' in section and "Traceback (most recent call last)" in section
    assert "from the result backend" in section
    assert 'id="retry-task-form"' in page

    # Retry task, same id: the worker runs it again and it succeeds this time.
    response = await async_client.post(f"/deadletters/{letter.pk}/retry-task", {"task_id": "same"})
    assert response.status_code == 302
    done = await wait_state(backend, first, "SUCCESS", demo_worker)
    assert done["result"]["image_id"] == same_image
    letter = await sync_to_async(DeadLetter.objects.get)(pk=letter.pk)
    assert letter.status == DeadLetter.Status.REQUEUED
    (entry,) = [e for e in await audit_of(letter) if e.action == "deadletter.task.requeue"]
    assert entry.outcome == AuditEntry.Outcome.OK and entry.user_id == operator.pk
    assert entry.parameters["task_id"] == first and entry.parameters["new_task_id"] is False
    assert entry.parameters["routing_key"] == f"{prefix}celery-tasks"
    page = (await async_client.get(f"/deadletters/{letter.pk}/")).content.decode()
    assert 'data-status="task_success"' in page

    # Retry task, new id: a new task id runs; the old one keeps its failure.
    other = await letter_of(dlq, second)
    response = await async_client.post(f"/deadletters/{other.pk}/retry-task", {"task_id": "new"})
    assert response.status_code == 302
    (entry,) = [e for e in await audit_of(other) if e.action == "deadletter.task.requeue"]
    fresh = entry.parameters["task_id"]
    assert fresh != second and entry.parameters["previous_task_id"] == second
    done = await wait_state(backend, fresh, "SUCCESS", demo_worker)
    assert done["result"]["image_id"] == new_image
    assert state(backend, second)["status"] == "FAILURE"
    assert entry.parameters["diff"]["headers"]["changed"] == ["id"]


async def test_a_viewer_may_not_retry_a_task(use_clusters, rabbitmq_vhost, async_client, viewer):
    dlq = h.unique("celery-viewer") + ".dlq"
    await _publish_raw(rabbitmq_vhost, dlq, b'[["a"], {}, {}]', "application/json")
    target = await flow.manage("test-rabbitmq", rabbitmq_vhost, dlq)
    await flow.capture_until(target, _captured(dlq))
    (letter,) = await flow.rows_of(dlq)
    await async_client.aforce_login(viewer)
    page = (await async_client.get(f"/deadletters/{letter.pk}/")).content.decode()
    assert 'id="celery-task"' in page and 'id="retry-task-form"' not in page
    response = await async_client.post(f"/deadletters/{letter.pk}/retry-task", {"task_id": "new"})
    assert response.status_code == 403
    assert (await sync_to_async(DeadLetter.objects.get)(pk=letter.pk)).status == "pending"


class CreatesFile:
    """Unpickling this creates the file it names."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


async def _publish_raw(vhost: str, dlq: str, body: bytes, content_type: str) -> str:
    task_id = str(uuid.uuid4())
    connection = await h.amqp(vhost)
    await (await connection.channel()).declare_queue(dlq)
    await connection.close()
    headers = {
        "lang": "py", "task": "reports.render", "id": task_id, "root_id": task_id,
        "parent_id": None, "retries": 0, "argsrepr": "(<Report>,)", "kwargsrepr": "{}",
    }  # fmt: skip
    await h.publish_to(
        vhost,
        dlq,
        [body],
        headers=headers,
        content_type=content_type,
        content_encoding="binary",
        correlation_id=task_id,
    )
    return task_id


def _captured(dlq: str):
    async def check() -> bool:
        return await flow.stored_count(dlq) == 1

    return check


async def test_a_pickled_task_is_captured_and_shown_as_bytes_never_unpickled(
    use_clusters, rabbitmq_vhost, backend, tmp_path, async_client, operator
):
    marker = tmp_path / "unpickled"
    body = pickle.dumps(((CreatesFile(marker),), {}, {"callbacks": None}))
    dlq = h.unique("celery-pickle") + ".dlq"
    task_id = await _publish_raw(rabbitmq_vhost, dlq, body, "application/x-python-serialize")
    target = await flow.manage("test-rabbitmq", rabbitmq_vhost, dlq)
    await flow.capture_until(target, _captured(dlq))
    (letter,) = await flow.rows_of(dlq)
    assert bytes(letter.body) == body

    await async_client.aforce_login(operator)
    page = (await async_client.get(f"/deadletters/{letter.pk}/")).content.decode()
    assert not marker.exists()
    section = page[page.index('id="celery-task"') : page.index("Failure timeline")]
    assert "reports.render" in section and task_id in section
    assert 'id="task-args-opaque"' in section and "(&lt;Report&gt;,)" in section
    assert "never unpickled" in page
    assert "00000000  80" in page  # the body as a hex dump
    assert "no stored result for this id" in section

    # A new id rewrites the id header and correlation id; root id and the bytes stay.
    task, fresh, edit = await sync_to_async(celery_tasks._retry_plan)(letter.pk, True)
    assert edit is not None and edit.body is None and task.id == task_id
    assert edit.headers["id"] == fresh != task_id and edit.headers["root_id"] == task_id
    to = RequeueTarget(exchange="", routing_key="reports")  # published straight to the DLQ
    sent = rabbit_requeue.outgoing(stored_letter(letter), to, edit).message
    assert isinstance(sent, rabbit_requeue.AmqpLetter) and sent.body == body
    assert rabbit_requeue.amqp_message(sent).correlation_id == fresh
    assert not marker.exists()
    # The proof is sound: unpickling the captured body would have created the file.
    pickle.loads(bytes(letter.body))
    assert marker.exists()
