"""The schedule service: due times (the gap rule), freezing, cancel and bring forward, roles.

Real database; no broker (nothing is sent here: the worker's dispatcher sends).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.exceptions import PermissionDenied
from django.utils import timezone

from dashboard.core.params import InvalidInput
from dashboard.deadletters import schedule as service
from dashboard.deadletters.inbox import InboxFilter
from dashboard.deadletters.requeue_job import SelectionChanged
from dashboard.models import AuditEntry, DeadLetter, RequeueSchedule
from tests.support import schedules as seed

Status = DeadLetter.Status
START = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
pytestmark = [pytest.mark.django_db(transaction=True)]


def offsets(times: list[datetime]) -> list[float]:
    return [(t - START).total_seconds() for t in times]


# -- due times -----------------------------------------------------------------------


def test_it_makes_every_letter_due_at_the_start_without_backoff():
    assert service.due_times(3, START, None) == [START] * 3


def test_it_grows_gaps_by_the_factor_then_holds_them_at_the_cap():
    times = service.due_times(6, START, service.Backoff(base=10, factor=2, cap=50))
    # gaps 10, 20, 40, then the cap 50, 50
    assert offsets(times) == [0, 10, 30, 70, 120, 170]


def test_it_keeps_a_factor_of_one_as_even_gaps():
    times = service.due_times(4, START, service.Backoff(base=5, factor=1, cap=5))
    assert offsets(times) == [0, 5, 10, 15]


def test_it_keeps_jittered_gaps_within_their_bounds_and_in_order():
    backoff = service.Backoff(base=10, factor=2, cap=40, jitter=0.25)
    times = service.due_times(200, START, backoff, rng=random.Random(7))
    gaps = [b - a for a, b in zip(offsets(times), offsets(times)[1:], strict=False)]
    nominal = [min(40, 10 * 2**n) for n in range(len(gaps))]
    assert times[0] == START
    assert times == sorted(times)
    for gap, expected in zip(gaps, nominal, strict=True):
        assert expected * 0.75 <= gap <= expected * 1.25
    # The jitter really moves the gaps (not all at their nominal value).
    assert any(abs(g - e) > 0.01 for g, e in zip(gaps, nominal, strict=True))


def test_it_refuses_a_spread_past_a_year_instead_of_overflowing():
    backoff = service.Backoff(base=3600, factor=2, cap=30 * 86400)
    with pytest.raises(InvalidInput, match=r"backoff: .* more than a year"):
        service.due_times(10_000, START, backoff)


@pytest.mark.parametrize(
    ("backoff", "field"),
    [
        (service.Backoff(base=0), "base"),
        (service.Backoff(base=10, factor=0.5), "factor"),
        (service.Backoff(base=10, cap=5), "cap"),
        (service.Backoff(base=10, jitter=2), "jitter"),
        (service.Backoff(base=float("nan")), "base"),
    ],
)
def test_it_refuses_a_bad_backoff(backoff, field):
    with pytest.raises(InvalidInput, match=field):
        backoff.check()


def test_it_starts_from_a_delay_or_an_aware_time_but_not_a_naive_one():
    now = START
    assert service.start_time(None, 90, now) == now + timedelta(seconds=90)
    assert service.start_time(now + timedelta(hours=1), None, now) == now + timedelta(hours=1)
    # A time already past is now.
    assert service.start_time(now - timedelta(hours=1), None, now) == now
    with pytest.raises(InvalidInput, match="time zone"):
        service.start_time(datetime(2026, 1, 1, 13, 0), None, now)
    with pytest.raises(InvalidInput, match="not both"):
        service.start_time(now, 5, now)
    with pytest.raises(InvalidInput, match="year"):
        service.start_time(None, 400 * 86400, now)


# -- scheduling ----------------------------------------------------------------------


async def test_it_schedules_chosen_letters_with_spread_due_times_and_an_audit(operator):
    made = await sync_to_async(seed.letters)(3)
    ids = [m.pk for m in made]
    before = timezone.now()
    schedule = await service.do_schedule_requeue(
        user=operator, ids=ids, delay=60, backoff=service.Backoff(base=30, factor=2, cap=100)
    )

    def check() -> None:
        rows = list(DeadLetter.objects.filter(pk__in=ids).order_by("pk"))
        assert [r.status for r in rows] == [Status.SCHEDULED] * 3
        assert {r.schedule_id for r in rows} == {schedule.pk}
        moments = [r.due_at for r in rows if r.due_at is not None]
        assert len(moments) == 3
        assert [(m - moments[0]).total_seconds() for m in moments] == [0, 30, 90]
        assert moments[0] >= before + timedelta(seconds=60)
        fresh = RequeueSchedule.objects.get(pk=schedule.pk)
        assert fresh.total == 3 and fresh.state == RequeueSchedule.State.ACTIVE
        assert (fresh.first_due, fresh.last_due) == (rows[0].due_at, rows[2].due_at)
        entry = AuditEntry.objects.get(action="deadletters.schedule")
        assert entry.parameters["scheduled"] == 3 and entry.parameters["schedule"] == schedule.pk
        assert entry.parameters["backoff"] == {"base": 30, "factor": 2, "cap": 100, "jitter": 0}
        counts = service.counts(fresh)
        assert (counts.waiting, counts.sent, counts.cancelled) == (3, 0, 0)

    await sync_to_async(check)()


async def test_it_freezes_a_group_and_leaves_out_letters_captured_later(operator):
    early = await sync_to_async(seed.letters)(2, fingerprint="fp-freeze")
    upto = early[-1].pk
    late = await sync_to_async(seed.letters)(1, fingerprint="fp-freeze")
    schedule = await service.do_schedule_requeue(
        user=operator, spec=InboxFilter(group="fp-freeze"), delay=600, expect=2, upto=upto
    )
    statuses = await sync_to_async(
        lambda: dict(DeadLetter.objects.filter(fingerprint="fp-freeze").values_list("pk", "status"))
    )()
    assert statuses == {
        early[0].pk: Status.SCHEDULED,
        early[1].pk: Status.SCHEDULED,
        late[0].pk: Status.PENDING,
    }
    assert schedule.total == 2
    assert schedule.description["filter"]["group"] == "fp-freeze"


async def test_it_refuses_when_the_count_confirmed_no_longer_matches(operator):
    await sync_to_async(seed.letters)(3, fingerprint="fp-expect")
    with pytest.raises(SelectionChanged, match="You confirmed 2 dead letters, but 3"):
        await service.do_schedule_requeue(
            user=operator, spec=InboxFilter(group="fp-expect"), delay=60, expect=2
        )
    assert not await sync_to_async(RequeueSchedule.objects.exists)()


async def test_it_skips_letters_no_longer_pending_and_refuses_when_none_is(operator):
    made = await sync_to_async(seed.letters)(2)
    await sync_to_async(DeadLetter.objects.filter(pk=made[0].pk).update)(status=Status.REQUEUED)
    schedule = await service.do_schedule_requeue(user=operator, ids=[m.pk for m in made], delay=60)
    assert schedule.total == 1
    with pytest.raises(InvalidInput, match="nothing to schedule"):
        await service.do_schedule_requeue(user=operator, ids=[made[0].pk], delay=60)


async def test_it_refuses_viewers_and_audits_the_refusal(viewer):
    made = await sync_to_async(seed.letters)(1)
    with pytest.raises(PermissionDenied):
        await service.do_schedule_requeue(user=viewer, ids=[made[0].pk], delay=60)
    with pytest.raises(PermissionDenied):
        await service.do_cancel(user=viewer, ids=[made[0].pk])
    with pytest.raises(PermissionDenied):
        await service.do_bring_forward(user=viewer, ids=[made[0].pk])
    refused = await sync_to_async(
        lambda: list(AuditEntry.objects.filter(outcome="refused").values_list("action", flat=True))
    )()
    assert sorted(refused) == [
        "deadletters.schedule",
        "deadletters.schedule_cancel",
        "deadletters.schedule_now",
    ]
    letter = await sync_to_async(DeadLetter.objects.get)(pk=made[0].pk)
    assert letter.status == Status.PENDING


# -- cancel and bring forward ----------------------------------------------------------


async def test_it_cancels_one_letter_then_the_rest_with_counts_and_audit(operator):
    made = await sync_to_async(seed.letters)(3)
    ids = [m.pk for m in made]
    schedule = await service.do_schedule_requeue(user=operator, ids=ids, delay=3600)

    assert await service.do_cancel(user=operator, ids=[ids[0]]) == 1
    one = await sync_to_async(DeadLetter.objects.get)(pk=ids[0])
    assert (one.status, one.due_at, one.schedule_id) == (Status.PENDING, None, None)

    # One of the rest was sent meanwhile (as the dispatcher would): the rest is one letter.
    await sync_to_async(DeadLetter.objects.filter(pk=ids[1]).update)(status=Status.REQUEUED)
    assert await service.do_cancel(user=operator, schedule_id=schedule.pk) == 1
    assert await service.do_cancel(user=operator, schedule_id=schedule.pk) == 0

    def check() -> None:
        fresh = RequeueSchedule.objects.get(pk=schedule.pk)
        assert fresh.cancelled == 2
        assert fresh.state == RequeueSchedule.State.CANCELLED and fresh.finished_at
        counts = service.counts(fresh)
        assert (counts.waiting, counts.sent, counts.cancelled) == (0, 1, 2)
        entries = list(
            AuditEntry.objects.filter(action="deadletters.schedule_cancel").order_by("pk")
        )
        assert [e.parameters["cancelled"] for e in entries] == [1, 1, 0]
        assert entries[1].target == f"schedule #{schedule.pk}"
        assert entries[0].parameters["schedules"] == [schedule.pk]

    await sync_to_async(check)()


async def test_cancelling_the_last_letter_alone_finishes_the_schedule(operator):
    made = await sync_to_async(seed.letters)(2)
    schedule = await service.do_schedule_requeue(
        user=operator, ids=[m.pk for m in made], delay=3600
    )
    await sync_to_async(DeadLetter.objects.filter(pk=made[0].pk).update)(status=Status.REQUEUED)
    await service.do_cancel(user=operator, ids=[made[1].pk])
    fresh = await sync_to_async(RequeueSchedule.objects.get)(pk=schedule.pk)
    assert fresh.state == RequeueSchedule.State.FINISHED


async def test_cancelling_every_letter_one_by_one_cancels_the_schedule(operator):
    made = await sync_to_async(seed.letters)(2)
    schedule = await service.do_schedule_requeue(
        user=operator, ids=[m.pk for m in made], delay=3600
    )
    await service.do_cancel(user=operator, ids=[made[0].pk])
    fresh = await sync_to_async(RequeueSchedule.objects.get)(pk=schedule.pk)
    assert fresh.state == RequeueSchedule.State.ACTIVE
    await service.do_cancel(user=operator, ids=[made[1].pk])
    fresh = await sync_to_async(RequeueSchedule.objects.get)(pk=schedule.pk)
    assert fresh.state == RequeueSchedule.State.CANCELLED and fresh.cancelled == 2


async def test_it_brings_letters_forward_to_now_and_audits(operator):
    made = await sync_to_async(seed.letters)(3)
    ids = [m.pk for m in made]
    schedule = await service.do_schedule_requeue(
        user=operator, ids=ids, delay=3600, backoff=service.Backoff(base=60)
    )
    before = timezone.now()
    assert await service.do_bring_forward(user=operator, ids=[ids[2]]) == 1
    letter = await sync_to_async(DeadLetter.objects.get)(pk=ids[2])
    assert letter.status == Status.SCHEDULED and letter.due_at is not None
    assert before <= letter.due_at <= timezone.now()
    assert await sync_to_async(lambda: DeadLetter.objects.filter(service.due_now()).count())() == 1

    # Already due: not counted again; the whole schedule brings the other two.
    assert await service.do_bring_forward(user=operator, schedule_id=schedule.pk) == 2
    due = await sync_to_async(lambda: DeadLetter.objects.filter(service.due_now()).count())()
    assert due == 3
    entries = await sync_to_async(
        lambda: list(
            AuditEntry.objects.filter(action="deadletters.schedule_now")
            .order_by("pk")
            .values_list("parameters", flat=True)
        )
    )()
    assert [e["brought_forward"] for e in entries] == [1, 2]


async def test_it_refuses_cancel_without_a_schedule_or_letters(operator):
    with pytest.raises(InvalidInput, match="choose a schedule or letters"):
        await service.do_cancel(user=operator)


async def test_a_letter_cancelled_then_requeued_by_hand_is_not_counted_as_sent(operator):
    made = await sync_to_async(seed.letters)(1)
    schedule = await service.do_schedule_requeue(user=operator, ids=[made[0].pk], delay=600)
    await service.do_cancel(user=operator, ids=[made[0].pk])
    await sync_to_async(DeadLetter.objects.filter(pk=made[0].pk).update)(status=Status.REQUEUED)
    fresh = await sync_to_async(RequeueSchedule.objects.get)(pk=schedule.pk)
    counts = await sync_to_async(service.counts)(fresh)
    assert (counts.sent, counts.cancelled) == (0, 1)


def test_the_list_reads_counts_per_schedule_newest_first(operator):
    made = seed.letters(4)
    first = async_to_sync(service.do_schedule_requeue)(
        user=operator, ids=[m.pk for m in made[:2]], delay=60
    )
    second = async_to_sync(service.do_schedule_requeue)(
        user=operator, ids=[m.pk for m in made[2:]], delay=60
    )
    DeadLetter.objects.filter(pk=made[0].pk).update(status=Status.FAILED_AGAIN)
    DeadLetter.objects.filter(pk=made[1].pk).update(status=Status.REQUEUE_FAILED)
    DeadLetter.objects.filter(pk=made[2].pk).update(status=Status.REQUEUED)
    page = service.get_schedules(1)
    rows = {row.schedule.pk: row.counts for row in page.object_list}
    assert [row.schedule.pk for row in page.object_list] == [second.pk, first.pk]
    assert rows[first.pk] == service.ScheduleCounts(0, 0, 1, 1, 1, 0)
    assert rows[second.pk] == service.ScheduleCounts(1, 0, 1, 0, 0, 0)
