"""The dispatcher's rules, run in this process on real captured RabbitMQ letters: who acts,
what is audited, unroutable and cancelled letters, and the lease that keeps it single."""

from __future__ import annotations

import asyncio
import threading
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from dashboard.core.connections import close_all
from dashboard.deadletters import dispatch, schedule
from dashboard.models import AuditEntry, DeadLetter, RequeueSchedule, RetryPolicy
from tests.support import deadletter_flow as flow

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
