"""Discarded dead letters are kept for the retention period, then deleted by the collector.

Rows are made directly in the database (retention never talks to a broker);
the discard itself goes through the real service, so the retention clock is
the one a user's click starts.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from dashboard.collector import LOOPS
from dashboard.collector import retention as loop
from dashboard.deadletters.discard import do_discard_dead_letters
from dashboard.deadletters.retention import do_delete_expired_dead_letters
from dashboard.models import AuditEntry, Cluster, DeadLetter, DeadLetterBody
from tests.support import deadletters as h

DAYS = 30
Status = DeadLetter.Status


@pytest.fixture
def cluster(settings) -> Cluster:
    settings.MQB_DLQ_RETENTION_DAYS = DAYS
    return Cluster.objects.create(slug="retention-rabbit", kind="rabbitmq", name="Retention")


def letter(cluster: Cluster, status: str, days_ago: float | None, **extra: object) -> DeadLetter:
    row = DeadLetter.objects.create(
        cluster=cluster,
        dlq="orders.dlq",
        capture_key=f"{status}-{DeadLetter.objects.count()}",
        status=status,
        body=b'{"order": 1}',
        **extra,
    )
    if days_ago is not None:
        DeadLetter.objects.filter(pk=row.pk).update(
            acted_at=timezone.now() - timedelta(days=days_ago)
        )
    return row


def retention_audits() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action="deadletter.retention"))


@pytest.mark.django_db
def test_it_deletes_only_discarded_letters_past_retention_in_batches(cluster):
    expired = [letter(cluster, Status.DISCARDED, DAYS + 1) for _ in range(5)]
    DeadLetterBody.objects.create(dead_letter=expired[0], data=b"x" * 10)
    kept = [
        letter(cluster, Status.DISCARDED, DAYS - 1),
        letter(cluster, Status.PENDING, None),
        letter(cluster, Status.REQUEUED, DAYS + 10),
        letter(cluster, Status.FAILED_AGAIN, DAYS + 10),
        letter(cluster, Status.REQUEUE_FAILED, DAYS + 10),
    ]
    came_back = letter(cluster, Status.FAILED_AGAIN, DAYS + 10)
    DeadLetter.objects.filter(pk=came_back.pk).update(failed_again_as=expired[1])

    assert do_delete_expired_dead_letters(batch=2) == 5

    assert set(DeadLetter.objects.values_list("pk", flat=True)) == {
        *(row.pk for row in kept),
        came_back.pk,
    }
    assert not DeadLetterBody.objects.exists()
    came_back.refresh_from_db()
    assert came_back.failed_again_as is None
    [entry] = retention_audits()
    assert entry.parameters["deleted"] == 5
    assert entry.parameters["retention_days"] == DAYS
    assert entry.user is None and entry.outcome == AuditEntry.Outcome.OK


@pytest.mark.django_db
def test_a_run_that_deletes_nothing_writes_no_audit_entry(cluster):
    letter(cluster, Status.DISCARDED, DAYS - 1)
    assert do_delete_expired_dead_letters() == 0
    assert retention_audits() == []


@pytest.mark.django_db
def test_a_discarded_row_without_a_discard_time_counts_from_its_capture(cluster):
    old = letter(cluster, Status.DISCARDED, None)
    DeadLetter.objects.filter(pk=old.pk).update(
        captured_at=timezone.now() - timedelta(days=DAYS + 1)
    )
    fresh = letter(cluster, Status.DISCARDED, None)
    assert do_delete_expired_dead_letters() == 1
    assert list(DeadLetter.objects.values_list("pk", flat=True)) == [fresh.pk]


@pytest.mark.django_db(transaction=True)
async def test_the_retention_clock_starts_at_the_discard(cluster, operator):
    row = await sync_to_async(letter)(cluster, Status.PENDING, None)
    assert await do_discard_dead_letters([row.pk], user=operator) == 1
    later = timezone.now() + timedelta(days=DAYS - 1)
    assert await sync_to_async(do_delete_expired_dead_letters)(now=later) == 0
    after = timezone.now() + timedelta(days=DAYS, minutes=1)
    assert await sync_to_async(do_delete_expired_dead_letters)(now=after) == 1
    assert not await DeadLetter.objects.filter(pk=row.pk).aexists()
    # The discard's own audit entry outlives the row.
    assert await AuditEntry.objects.filter(action="deadletter.discard").acount() == 1


@pytest.mark.django_db(transaction=True)
async def test_the_collector_loop_deletes_expired_letters_and_stops_on_request(cluster, settings):
    settings.MQB_DLQ_RETENTION_INTERVAL = 3600
    assert LOOPS["retention"] == "dashboard.collector.retention.run"
    expired = await sync_to_async(letter)(cluster, Status.DISCARDED, DAYS + 1)
    kept = await sync_to_async(letter)(cluster, Status.DISCARDED, 1)
    stop = asyncio.Event()
    task = asyncio.create_task(loop.run(stop, 5.0))
    try:

        async def gone() -> bool:
            return not await DeadLetter.objects.filter(pk=expired.pk).aexists()

        await h.async_wait_for(gone, 20, what="the expired letter deleted")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert await DeadLetter.objects.filter(pk=kept.pk).aexists()
    assert await AuditEntry.objects.filter(action="deadletter.retention").acount() == 1
