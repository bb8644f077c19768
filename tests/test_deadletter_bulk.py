"""Bulk requeue of dead letters as a job: frozen selection, exact counts, verdict, roles."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied

from dashboard.core.connections import close_all
from dashboard.deadletters import requeue_job
from dashboard.deadletters.inbox import InboxFilter
from dashboard.jobs import control, runner
from dashboard.models import DeadLetter, Job
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queued(monkeypatch) -> list[Job]:
    """Jobs handed to the worker; the tests run them with jobs.run_job themselves."""
    sent: list[Job] = []
    monkeypatch.setattr(control, "enqueue", sent.append)
    return sent


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config, rabbitmq_vhost):
    use_clusters(rabbitmq_config)
    ids = [f"bulk-{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, ids)
    yield made, await flow.rows_of(made.dlq)
    await close_all()


async def run(job: Job) -> Job:
    await asyncio.to_thread(runner.run_job, job.pk, job.task_id)
    return await sync_to_async(control.get_job)(job.pk)


async def test_a_filter_requeue_freezes_its_selection_and_ends_with_exact_counts(
    rabbit, operator, queued
):
    made, rows = rabbit
    await sync_to_async(DeadLetter.objects.filter(pk=rows[0].pk).update)(status="discarded")

    job = await requeue_job.do_start_bulk_requeue(user=operator, spec=InboxFilter(dlq=made.dlq))
    # Dead letters arriving after the start are not swept in.
    await flow.dead_letter_again(made, [f"late-{uuid.uuid4().hex[:6]}"])
    finished = await run(job)

    assert finished.selection == [r.pk for r in rows[1:]]
    assert (finished.state, finished.done, finished.total, finished.failed) == ("done", 5, 5, 0)
    assert finished.result["requeued"] == 5
    assert "5 of 5 requeued" in finished.verdict
    got = await flow.take_all(made.vhost, made.work, expect=5)
    assert sorted(str(m.message_id) for m in got) == sorted(r.message_id for r in rows[1:])
    statuses = [r.status for r in await flow.rows_of(made.dlq)]
    assert statuses == ["discarded"] + ["requeued"] * 5 + ["pending"]


async def test_a_selection_skips_letters_requeued_meanwhile_and_counts_unroutable(
    rabbit, operator, queued
):
    made, rows = rabbit
    chosen = [r.pk for r in rows[:3]]
    job = await requeue_job.do_start_bulk_requeue(user=operator, ids=chosen)
    # One is requeued by hand before the worker gets to it; one origin vanished.
    await sync_to_async(DeadLetter.objects.filter(pk=rows[0].pk).update)(status="requeued")
    await sync_to_async(DeadLetter.objects.filter(pk=rows[1].pk).update)(
        origin_exchange=f"gone-{uuid.uuid4().hex[:6]}"
    )

    finished = await run(job)

    assert finished.result["requeued"] == 1
    assert finished.result["skipped"] == 1
    assert finished.failed == 1 and "unroutable" in finished.result["errors"][0]
    await flow.take_all(made.vhost, made.work, expect=1)
    assert await h.depth(made.vhost, made.work) == 0


async def test_a_celery_task_goes_back_to_its_workers_queue_whatever_exchange_it_came_through(
    rabbit, operator, queued
):
    made, rows = rabbit
    assert rows[0].origin_queue == rows[1].origin_queue == made.work
    # Both came through an exchange that is gone; only the first was a Celery task.
    both = DeadLetter.objects.filter(pk__in=[rows[0].pk, rows[1].pk])
    await sync_to_async(both.update)(origin_exchange=f"gone-{uuid.uuid4().hex[:6]}")
    task = {"task": {"name": "app.add", "id": "t-1"}}
    await sync_to_async(DeadLetter.objects.filter(pk=rows[0].pk).update)(failure_details=task)
    await sync_to_async(DeadLetter.objects.filter(pk=rows[1].pk).update)(
        failure_details={"task": None}
    )

    job = await requeue_job.do_start_bulk_requeue(user=operator, ids=[rows[0].pk, rows[1].pk])
    finished = await run(job)

    assert (finished.result["requeued"], finished.failed) == (1, 1)
    got = await flow.take_all(made.vhost, made.work, expect=1)
    assert [str(m.message_id) for m in got] == [rows[0].message_id]
    statuses = {r.pk: r.status for r in await flow.rows_of(made.dlq)}
    assert (statuses[rows[0].pk], statuses[rows[1].pk]) == ("requeued", "requeue_failed")


async def test_a_cancelled_job_stops_and_a_viewer_cannot_start_one(
    rabbit, operator, viewer, queued
):
    made, rows = rabbit
    with pytest.raises(PermissionDenied):
        await requeue_job.do_start_bulk_requeue(user=viewer, ids=[rows[0].pk])

    job = await requeue_job.do_start_bulk_requeue(user=operator, ids=[r.pk for r in rows])
    await sync_to_async(control.do_cancel_job)(job.pk, user=operator)
    finished = await run(job)

    assert finished.state == "cancelled"
    assert await h.depth(made.vhost, made.work) == 0


async def test_the_inbox_starts_a_group_requeue_and_shows_the_job(
    async_client, rabbit, operator, queued
):
    _made, rows = rabbit
    await async_client.aforce_login(operator)

    answer = await async_client.post(
        "/deadletters/requeue-bulk", {"group": rows[0].fingerprint, "cluster": "test-rabbitmq"}
    )
    # The dry run comes first; confirming it starts the job.
    assert answer.status_code == 303 and queued == []
    assert answer["Location"].startswith("/deadletters/preview/")
    answer = await async_client.post(answer["Location"] + "requeue", {"rate_limit": ""})

    assert answer.status_code == 303
    [job] = queued
    assert answer["Location"] == f"/jobs/{job.pk}/"
    assert sorted(job.selection) == sorted(r.pk for r in rows)
    api = await async_client.post(
        "/api/deadletters/requeue-bulk", {"ids": [rows[0].pk]}, content_type="application/json"
    )
    assert api.status_code == 202 and api.json()["job"]["kind"] == "deadletters.requeue"
