"""The dispatcher's rules, run in this process on real captured RabbitMQ letters: who acts,
what is audited (and shown on each letter's page), unroutable and cancelled letters, the
lease that keeps it single, and letters it left in flight (not stuck while it runs)."""

from __future__ import annotations

import asyncio
import re
import threading
import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.urls import reverse
from django.utils import timezone

from dashboard.core.connections import close_all
from dashboard.deadletters import dispatch, schedule, stuck
from dashboard.models import AuditEntry, DeadLetter, RequeueSchedule, RetryPolicy
from tests.support import deadletter_flow as flow
from tests.support import schedules as seeds

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config, rabbitmq_vhost):
    use_clusters(rabbitmq_config)
    ids = [f"disp-{i}-{uuid.uuid4().hex[:6]}" for i in range(6)]
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, ids)
    yield made, await flow.rows_of(made.dlq)
    await close_all()


async def run_until_settled(*pks: int) -> str:
    """Run the dispatcher in a thread until none of ``pks`` waits or is in flight."""
    stop = threading.Event()
    running = asyncio.ensure_future(asyncio.to_thread(dispatch.run_dispatcher, stop))

    def open_count() -> int:
        return DeadLetter.objects.filter(
            pk__in=pks, status__in=(DeadLetter.Status.SCHEDULED, DeadLetter.Status.REQUEUING)
        ).count()

    try:
        for _ in range(300):
            if running.done() or not await sync_to_async(open_count)():
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
    return await running


async def actions_taken(client: AsyncClient, pk: int) -> str:
    """The text of the "Actions taken" table of a letter's page."""
    page = (await client.get(reverse("deadletters-detail", args=[pk]))).content.decode()
    assert page.count("<h2>Actions taken</h2>") == 1
    table = page.split("<h2>Actions taken</h2>", 1)[1].split("</table>", 1)[0]
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", table))


def audits(target: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=dispatch.ACTION, target=target).order_by("pk"))


async def test_schedules_act_as_their_creator_policies_as_the_system_and_unroutable_fail(
    rabbit, operator
):
    made, rows = rabbit
    pks = [r.pk for r in rows]
    policy = await sync_to_async(RetryPolicy.objects.create)(name="retry soon", dry_run=False)
    await sync_to_async(DeadLetter.objects.filter(pk__in=pks[:2]).update)(
        status=DeadLetter.Status.SCHEDULED, due_at=timezone.now(), policy=policy
    )
    # One letter of the schedule goes to a queue that does not exist: unroutable.
    await sync_to_async(DeadLetter.objects.filter(pk=pks[4]).update)(
        origin_routing_key=f"gone-{uuid.uuid4().hex[:6]}"
    )
    plan = await schedule.do_schedule_requeue(user=operator, ids=pks[2:], delay=0.5)
    # Taken out before it was due: pending again, never sent.
    assert await schedule.do_cancel(user=operator, ids=[pks[5]]) == 1

    assert await run_until_settled(*pks) == "stopped"

    got = await flow.take_all(made.vhost, made.work, expect=4)
    assert sorted(m.message_id or "" for m in got) == sorted(
        r.message_id for r in rows if r.pk in (pks[0], pks[1], pks[2], pks[3])
    )
    after = await sync_to_async(DeadLetter.objects.in_bulk)(pks)
    assert [after[pk].status for pk in pks] == [
        "requeued", "requeued", "requeued", "requeued", "requeue_failed", "pending",
    ]  # fmt: skip
    assert after[pks[0]].acted_by_id is None and after[pks[1]].acted_by_id is None
    assert after[pks[2]].acted_by_id == operator.pk == after[pks[3]].acted_by_id
    assert after[pks[4]].last_error
    assert all(after[pk].requeue_count == 1 for pk in pks[:4])
    assert all(after[pk].claim_job is None for pk in pks), "no claim marker left on settled rows"

    by_policy = await sync_to_async(audits)(f"policy #{policy.pk}")
    assert [(a.username, a.parameters["sent"]) for a in by_policy] == [("", 2)]
    by_schedule = await sync_to_async(audits)(f"schedule #{plan.pk}")
    assert [(a.username, a.parameters["sent"], a.parameters["failed"]) for a in by_schedule] == [
        ("otto", 2, 1)
    ]
    finished = await sync_to_async(RequeueSchedule.objects.get)(pk=plan.pk)
    assert finished.state == "finished"
    counts = await sync_to_async(schedule.counts)(finished)
    assert (counts.sent, counts.failed, counts.cancelled, counts.waiting) == (2, 1, 1, 0)

    # Each letter's page shows the batch entry that sent it (or failed it), and no other.
    client = AsyncClient()
    await client.aforce_login(operator)
    for pk in (pks[2], pks[3], pks[4]):
        shown = await actions_taken(client, pk)
        assert f"schedule #{plan.pk}: 2 of 3 sent" in shown, shown
        assert "Sent when due" in shown and "otto" in shown
    for pk in (pks[0], pks[1]):
        shown = await actions_taken(client, pk)
        assert f"policy #{policy.pk}: 2 of 2 sent" in shown and "system" in shown, shown
    assert f"schedule #{plan.pk}:" not in await actions_taken(client, pks[5])


async def test_a_held_lease_keeps_a_second_dispatcher_out_and_is_given_back():
    holder = dispatch.Lease()
    assert await asyncio.to_thread(holder.take)
    try:
        assert await asyncio.to_thread(dispatch.run_dispatcher, threading.Event()) == "busy"
    finally:
        await asyncio.to_thread(holder.release)
    stop = threading.Event()
    stop.set()
    assert await asyncio.to_thread(dispatch.run_dispatcher, stop) == "stopping"
    # Given back: the next one takes it.
    again = dispatch.Lease()
    assert await asyncio.to_thread(again.take)
    await asyncio.to_thread(again.release)


async def test_letters_the_dispatcher_left_in_flight_are_not_stuck_while_a_dispatcher_runs(
    operator, settings
):
    settings.MQB_DLQ_STUCK_AFTER = 1.0
    [letter] = await sync_to_async(seeds.letters)(1)
    long_ago = timezone.now() - timedelta(minutes=5)
    await sync_to_async(DeadLetter.objects.filter(pk=letter.pk).update)(
        status=DeadLetter.Status.REQUEUING, claim_job=dispatch.CLAIM, claimed_at=long_ago
    )
    letter = await sync_to_async(DeadLetter.objects.get)(pk=letter.pk)
    client = AsyncClient()
    await client.aforce_login(operator)
    url = reverse("deadletters-detail", args=[letter.pk])

    holder = dispatch.Lease()
    assert await asyncio.to_thread(holder.take)
    try:
        assert not await sync_to_async(stuck.is_stuck)(letter)
        page = (await client.get(url)).content.decode()
        assert 'id="dispatcher-resend"' in page and "sends it again first" in page
        assert 'id="release-button"' not in page and "No dispatcher is running" not in page
    finally:
        await asyncio.to_thread(holder.release)

    # No dispatcher: the operator may put it back to pending (the next one would resend it).
    assert await sync_to_async(stuck.is_stuck)(letter)
    page = (await client.get(url)).content.decode()
    assert 'id="release-button"' in page and "No dispatcher is running" in page
    await stuck.do_release_stuck_requeue(letter.pk, user=operator)
    after = await sync_to_async(DeadLetter.objects.get)(pk=letter.pk)
    assert after.status == DeadLetter.Status.PENDING
    assert 'id="dispatcher-resend"' not in (await client.get(url)).content.decode()
