"""Write forms write once: a double submit of a form that starts a job starts one job, and
idempotency keys are claimed in the dashboard's Redis, so they hold across web processes.

The forms are read and posted as a browser would (Django's client, real RabbitMQ and
Redis): the hidden key comes from the rendered form, and the same fields are posted twice.
"""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from collections.abc import Mapping
from types import SimpleNamespace
from typing import Any

import pytest
import redis.asyncio
from asgiref.sync import async_to_sync
from django.contrib.sessions.backends.cache import SessionStore
from django.http import HttpRequest
from django.test import RequestFactory

from dashboard.core import once
from dashboard.core.connections import close_all
from dashboard.jobs import control
from dashboard.models import Job
from tests.support import deadletter_flow as flow

SLUG = "test-rabbitmq"
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


@pytest.fixture
def queued(monkeypatch) -> list[Job]:
    """Jobs are queued into this list instead of Redis: no stray task for a real worker."""
    sent: list[Job] = []
    monkeypatch.setattr(control, "enqueue", sent.append)
    return sent


def posted_key(html: str) -> str:
    found = KEY.findall(html)
    assert len(found) >= 1, "the form carries no idempotency key"
    return str(found[0])


# -- claims in Redis: one winner across processes ---------------------------------------------


def _request(user_pk: int) -> HttpRequest:
    """A POST of user ``user_pk`` with a session of its own."""
    request = RequestFactory().post("/")
    request.session = SessionStore()

    async def auser() -> Any:
        return SimpleNamespace(pk=user_pk)

    request.auser = auser
    return request


def test_two_processes_claiming_one_key_give_one_winner(redis_url):
    """Two web processes (each its own event loop, session and Redis connection) claim the
    same key at the same moment: one may write, the other is told the key is taken."""
    key, kind = once.new_key(), f"test-{uuid.uuid4().hex[:8]}"
    barrier = threading.Barrier(2)
    outcomes: list[str | None] = []

    def process() -> None:
        async def claim() -> str | None:
            client = redis.asyncio.Redis.from_url(redis_url)
            try:
                barrier.wait()
                return await once.claim(_request(7), kind, key, wait=0.5, store=once.Claims(client))
            finally:
                await client.aclose()

        outcomes.append(asyncio.run(claim()))

    threads = [threading.Thread(target=process) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=repr) == sorted([None, ""], key=repr)  # one winner, one waiter

    async def settle_then_claim() -> tuple[str | None, str | None]:
        first = redis.asyncio.Redis.from_url(redis_url)
        second = redis.asyncio.Redis.from_url(redis_url)
        try:
            await once.settle(_request(7), kind, key, "/jobs/1/", store=once.Claims(first))
            again = await once.claim(_request(7), kind, key, store=once.Claims(second))
            other_user = await once.claim(_request(8), kind, key, store=once.Claims(second))
        finally:
            await first.aclose()
            await second.aclose()
        return again, other_user

    again, other_user = asyncio.run(settle_then_claim())
    assert again == "/jobs/1/"  # a later resend, in a third process, goes where the first went
    assert other_user is None  # keys are per user


# -- the move form ------------------------------------------------------------------------------


@pytest.fixture
def move_queues(unique_name, rabbitmq_vhost):
    from tests.support.move import declare

    source, target = f"{unique_name}-src", f"{unique_name}-dst"

    async def make() -> None:
        import aio_pika

        connection = await aio_pika.connect(
            host="127.0.0.1", login="guest", password="guest", virtualhost=rabbitmq_vhost
        )
        await declare(connection, source, target)
        await connection.close()

    async_to_sync(make)()
    return source, target


@pytest.mark.django_db
@pytest.mark.rabbitmq
def test_a_double_submitted_move_form_starts_one_job(
    client, operator, use_clusters, rabbitmq_vhost, move_queues, queued
):
    client.force_login(operator)
    source, target = move_queues
    form = client.get(f"/rabbitmq/{SLUG}/move", {"vhost": rabbitmq_vhost, "queue": source})
    fields = {
        "idempotency_key": posted_key(form.content.decode()),
        "vhost": rabbitmq_vhost,
        "source": source,
        "target_kind": "queue",
        "target_queue": target,
        "count": "5",
    }
    first = client.post(f"/rabbitmq/{SLUG}/move", fields)
    second = client.post(f"/rabbitmq/{SLUG}/move", fields)
    job = Job.objects.get()  # one job, not two
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/jobs/{job.pk}/"
    assert queued == [job]


@pytest.mark.django_db
@pytest.mark.rabbitmq
def test_a_move_refused_for_bad_input_may_be_sent_again(
    client, operator, use_clusters, rabbitmq_vhost, move_queues, queued
):
    client.force_login(operator)
    source, target = move_queues
    form = client.get(f"/rabbitmq/{SLUG}/move", {"vhost": rabbitmq_vhost, "queue": source})
    fields = {
        "idempotency_key": posted_key(form.content.decode()),
        "vhost": rabbitmq_vhost,
        "source": source,
        "target_kind": "queue",
        "target_queue": target,
        "count": "lots",
    }
    refused = client.post(f"/rabbitmq/{SLUG}/move", fields)
    assert refused.status_code == 400 and not Job.objects.exists()
    fixed = client.post(f"/rabbitmq/{SLUG}/move", {**fields, "count": "5"})
    assert fixed.status_code == 302 and Job.objects.count() == 1


# -- the inbox's bulk requeue forms -----------------------------------------------------------


@pytest.fixture
async def letters(use_clusters, rabbitmq_config, rabbitmq_vhost):
    use_clusters(rabbitmq_config)
    ids = [f"once-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, ids)
    yield made, await flow.rows_of(made.dlq)
    await close_all()


def _form(html: str, css_class: str) -> dict[str, str]:
    """The hidden fields of the first form whose class list holds ``css_class``."""
    found = re.search(
        rf'<form method="post" class="[^"]*\b{css_class}\b[^"]*".*?</form>', html, re.S
    )
    assert found, f"no {css_class} form"
    fields = dict(
        re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', found.group(0))
    )
    fields.pop("csrfmiddlewaretoken", None)
    return {name: value.replace("&amp;", "&") for name, value in fields.items()}


async def _dry_run(async_client, fields: Mapping[str, object]) -> tuple[str, dict[str, str]]:
    """POST an inbox bulk form: its dry-run page, and the fields of its "Requeue now" form."""
    answer = await async_client.post("/deadletters/requeue-bulk", fields)
    assert answer.status_code == 303, answer
    page = answer["Location"]
    shown = await async_client.get(page)
    return page, _form(shown.content.decode(), "preview-requeue")


@pytest.mark.django_db(transaction=True)
@pytest.mark.rabbitmq
async def test_a_double_submitted_group_requeue_starts_one_job(
    async_client, letters, operator, queued
):
    made, _rows = letters
    await async_client.aforce_login(operator)
    inbox = await async_client.get("/deadletters/", {"dlq": made.dlq})
    page, fields = await _dry_run(async_client, _form(inbox.content.decode(), "group-requeue"))
    assert fields["idempotency_key"]
    first = await async_client.post(page + "requeue", fields)
    second = await async_client.post(page + "requeue", fields)
    [job] = queued  # one job, not two
    assert first.status_code == second.status_code == 303
    assert first["Location"] == second["Location"] == f"/jobs/{job.pk}/"
    assert len(job.selection) == 3


@pytest.mark.django_db(transaction=True)
@pytest.mark.rabbitmq
async def test_a_double_submitted_requeue_of_all_matching_starts_one_job(
    async_client, letters, operator, queued
):
    made, _rows = letters
    await async_client.aforce_login(operator)
    inbox = await async_client.get("/deadletters/", {"dlq": made.dlq})
    page, fields = await _dry_run(async_client, _form(inbox.content.decode(), "bulk"))
    first = await async_client.post(page + "requeue", fields)
    second = await async_client.post(page + "requeue", fields)
    [job] = queued
    assert first["Location"] == second["Location"] == f"/jobs/{job.pk}/"


# -- other write forms: a resend writes nothing, other fields write again ---------------------


@pytest.mark.django_db
@pytest.mark.rabbitmq
def test_a_resent_queue_purge_does_not_purge_what_arrived_since(
    client, operator, use_clusters, rabbitmq_config, rabbitmq_vhost
):
    from tests.support.rabbitmq import (
        declare,
        delete_queue,
        drain,
        publish,
        unique,
        wait_for_depth,
    )

    use_clusters(rabbitmq_config)
    name = unique("once")
    declare(rabbitmq_vhost, name)
    try:
        client.force_login(operator)
        detail = client.get(f"/rabbitmq/{SLUG}/queue", {"vhost": rabbitmq_vhost, "name": name})
        fields = {
            "idempotency_key": posted_key(detail.content.decode()),
            "vhost": rabbitmq_vhost,
            "name": name,
        }
        publish(rabbitmq_vhost, name, "before")
        wait_for_depth(rabbitmq_vhost, name, 1)
        first = client.post(f"/rabbitmq/{SLUG}/queue/purge", fields)
        publish(rabbitmq_vhost, name, "arrived since")
        wait_for_depth(rabbitmq_vhost, name, 1)
        second = client.post(f"/rabbitmq/{SLUG}/queue/purge", fields)  # a resend
        assert first.status_code == second.status_code == 302
        assert first["Location"] == second["Location"]
        left = [m["payload"] for m in drain(rabbitmq_vhost, name)]
        assert left == ["YXJyaXZlZCBzaW5jZQ=="]  # base64 of "arrived since": not purged again
        followed = client.get(first["Location"]).content.decode()
        assert "Purged 1 ready message(s)" in followed
    finally:
        delete_queue(rabbitmq_vhost, name)


@pytest.mark.django_db(transaction=True)
@pytest.mark.rabbitmq
async def test_one_key_with_other_fields_is_another_write(async_client, letters, operator, queued):
    """Back shows the form again with its old key: what is posted from it for another
    choice (another dry run) is a new write, not the earlier one."""
    _made, rows = letters
    await async_client.aforce_login(operator)
    key = ""
    for row in rows[:2]:
        page, fields = await _dry_run(async_client, {"scope": "selected", "ids": [str(row.pk)]})
        key = key or fields["idempotency_key"]
        answer = await async_client.post(page + "requeue", {**fields, "idempotency_key": key})
        assert answer.status_code == 303 and answer["Location"].startswith("/jobs/")
    assert [job.selection for job in queued] == [[rows[0].pk], [rows[1].pk]]
