"""JSON API of scheduled requeues: schedule, list, read, cancel and send now.

``POST /deadletters/schedules`` (operator) schedules ``ids``, a ``group``
(fingerprint) or a ``filter`` (the inbox filter) at a time (``at``, ISO 8601
with its zone) or after a ``delay`` in seconds, optionally spread by
``backoff`` (``base``, ``factor``, ``cap``, ``jitter``; the gap rule is in
:mod:`dashboard.deadletters.schedule`). ``expect`` refuses when another count
of letters matches now; ``upto`` leaves out letters with a higher id. Whole
schedules are cancelled or sent now by id; single letters by ``ids`` under
``/deadletters/scheduled/``. Bad input is a 400 that names the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from asgiref.sync import sync_to_async
from django.http import Http404, HttpRequest
from ninja import Path, Router, Status
from pydantic import Field, WithJsonSchema

from dashboard.core.api import DateTimeText, Out, errors
from dashboard.core.params import InvalidInput, parse_page
from dashboard.deadletters import inbox as reads
from dashboard.deadletters import schedule as service
from dashboard.deadletters.schemas import MAX_ID, In, InboxFilterIn, LetterIds
from dashboard.models import RequeueSchedule

router = Router(tags=["dead letters"])


class ScheduleBackoffIn(In):
    """Gaps between successive letters: ``min(cap, base * factor ** n)`` seconds, ± jitter."""

    base: float = Field(gt=0, le=service.MAX_DELAY.total_seconds(), description="seconds")
    factor: float = Field(2.0, ge=1, le=100)
    cap: float = Field(3600.0, gt=0, le=service.MAX_DELAY.total_seconds(), description="seconds")
    jitter: float = Field(0.0, ge=0, le=1, description="share of each gap, 0 to 1")


class RequeueScheduleIn(In):
    """What (``ids``, ``group`` or ``filter``; the first given wins) and when (``at`` or
    ``delay``)."""

    ids: LetterIds | None = None
    group: str | None = Field(None, max_length=200, description="a group's fingerprint")
    filter: InboxFilterIn | None = Field(None, description="the inbox filter fields")
    at: datetime | None = Field(None, description="ISO 8601 with its time zone")
    delay: float | None = Field(None, ge=0, le=service.MAX_DELAY.total_seconds())
    backoff: ScheduleBackoffIn | None = None
    expect: int | None = Field(None, ge=0, le=MAX_ID)
    upto: int | None = Field(None, ge=1, le=MAX_ID)


class ScheduledLettersIn(In):
    ids: LetterIds = Field(min_length=1)


class RequeueScheduleCountsOut(Out):
    waiting: int
    sending: int
    sent: int = Field(description="requeued, including those that came back")
    came_back: int = Field(description="sent, then failed again within the verdict window")
    failed: int = Field(description="could not be sent")
    cancelled: int = Field(description="taken out before they were due")


class RequeueScheduleOut(Out):
    id: int
    state: Literal["active", "finished", "cancelled"]
    created_by: str | None
    created_at: DateTimeText
    description: dict[str, Any]
    parameters: dict[str, Any]
    total: int
    first_due: DateTimeText | None
    last_due: DateTimeText | None
    finished_at: DateTimeText | None
    counts: RequeueScheduleCountsOut


class RequeueSchedulesOut(Out):
    schedules: list[RequeueScheduleOut]
    page: int
    pages: int
    count: int


class ScheduledChangedOut(Out):
    changed: int = Field(description="how many letters this changed")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def schedule_json(row: service.ScheduleRow) -> dict[str, Any]:
    s, c = row.schedule, row.counts
    return {
        "id": s.pk,
        "state": s.state,
        "created_by": s.created_by.get_username() if s.created_by else None,
        "created_at": s.created_at.isoformat(),
        "description": s.description,
        "parameters": s.parameters,
        "total": s.total,
        "first_due": _iso(s.first_due),
        "last_due": _iso(s.last_due),
        "finished_at": _iso(s.finished_at),
        "counts": {
            "waiting": c.waiting,
            "sending": c.sending,
            "sent": c.sent,
            "came_back": c.came_back,
            "failed": c.failed,
            "cancelled": c.cancelled,
        },
    }


def _selection(payload: RequeueScheduleIn) -> tuple[list[int] | None, reads.InboxFilter | None]:
    if payload.ids is not None:
        ids = payload.ids
        if not isinstance(ids, list) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in ids
        ):
            raise InvalidInput(f"ids: a list of dead letter ids (whole numbers 1 to {MAX_ID})")
        if not ids:
            raise InvalidInput("ids: choose at least one letter")
        return ids, None
    if payload.group is not None:
        if not payload.group.strip():
            raise InvalidInput("group: a group's fingerprint")
        return None, reads.InboxFilter.from_params({"group": payload.group})
    if payload.filter is not None:
        return None, reads.InboxFilter.from_params(payload.filter.model_dump())
    raise InvalidInput("ids, group or filter: choose the letters to schedule")


@router.post(
    "/deadletters/schedules",
    response={201: RequeueScheduleOut, **errors(400, 403)},
    url_name="api-deadletters-schedule-requeue",
    summary="Requeue letters later: at a time or after a delay, optionally spread with backoff",
    description="Operator. The selection (pending letters at this moment) is frozen; each "
    "letter becomes scheduled with its own due time, and the worker sends it then.",
    operation_id="scheduleDeadLetterRequeue",
)
async def create(request: HttpRequest, payload: RequeueScheduleIn) -> Status[dict[str, Any]]:
    ids, spec = _selection(payload)
    if payload.at is not None and payload.at.tzinfo is None:
        raise InvalidInput("at: give the time with its time zone (…Z or …+02:00)")
    backoff = None
    if payload.backoff is not None:
        b = payload.backoff
        backoff = service.Backoff(base=b.base, factor=b.factor, cap=b.cap, jitter=b.jitter)
        if b.cap < b.base:
            raise InvalidInput("backoff.cap: at least the base delay")
    made = await service.do_schedule_requeue(
        user=await request.auser(),
        ids=ids,
        spec=spec,
        at=payload.at,
        delay=payload.delay,
        backoff=backoff,
        expect=payload.expect,
        upto=payload.upto,
        request=request,
    )
    row = await sync_to_async(service.get_schedule)(made.pk)
    return Status(201, schedule_json(row))


@router.get(
    "/deadletters/schedules",
    response={200: RequeueSchedulesOut, **errors(400)},
    url_name="api-deadletters-schedules",
    summary="Scheduled requeues, newest first, with their counts",
    operation_id="requeueSchedules",
)
async def schedules(request: HttpRequest, page: str | None = None) -> dict[str, Any]:
    number = parse_page(page, error=InvalidInput)
    found = await sync_to_async(service.get_schedules)(number)
    return {
        "schedules": [schedule_json(row) for row in found.object_list],
        "page": found.number,
        "pages": found.paginator.num_pages,
        "count": found.paginator.count,
    }


async def _one(schedule_id: int) -> service.ScheduleRow:
    if not 1 <= schedule_id <= MAX_ID:
        raise Http404(f"no schedule #{schedule_id}")
    try:
        return await sync_to_async(service.get_schedule)(schedule_id)
    except RequeueSchedule.DoesNotExist:
        raise Http404(f"no schedule #{schedule_id}") from None


# Django's int converter takes the digits; an id no schedule can have is not found.
ScheduleId = Path[
    Annotated[int, WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_ID})]
]


@router.get(
    "/deadletters/schedules/{int:schedule_id}",
    response={200: RequeueScheduleOut, **errors(404)},
    url_name="api-deadletters-schedule",
    summary="One scheduled requeue with its counts",
    operation_id="requeueSchedule",
)
async def schedule(request: HttpRequest, schedule_id: ScheduleId) -> dict[str, Any]:
    return schedule_json(await _one(schedule_id))


@router.post(
    "/deadletters/schedules/{int:schedule_id}/cancel",
    response={200: RequeueScheduleOut, **errors(403, 404)},
    url_name="api-deadletters-schedule-cancel",
    summary="Cancel the rest of a schedule: its waiting letters are pending again",
    operation_id="cancelRequeueSchedule",
)
async def cancel(request: HttpRequest, schedule_id: ScheduleId) -> dict[str, Any]:
    await _one(schedule_id)
    await service.do_cancel(user=await request.auser(), schedule_id=schedule_id, request=request)
    return schedule_json(await _one(schedule_id))


@router.post(
    "/deadletters/schedules/{int:schedule_id}/send-now",
    response={200: RequeueScheduleOut, **errors(403, 404)},
    url_name="api-deadletters-schedule-send-now",
    summary="Send a schedule's waiting letters now (they become due now)",
    operation_id="sendRequeueScheduleNow",
)
async def send_now(request: HttpRequest, schedule_id: ScheduleId) -> dict[str, Any]:
    await _one(schedule_id)
    await service.do_bring_forward(
        user=await request.auser(), schedule_id=schedule_id, request=request
    )
    return schedule_json(await _one(schedule_id))


def _ids(payload: ScheduledLettersIn) -> list[int]:
    ids = payload.ids
    if (
        not isinstance(ids, list)
        or not ids
        or not all(isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in ids)
    ):
        raise InvalidInput(f"ids: a list of dead letter ids (whole numbers 1 to {MAX_ID})")
    return ids


@router.post(
    "/deadletters/scheduled/cancel",
    response={200: ScheduledChangedOut, **errors(400, 403)},
    url_name="api-deadletters-scheduled-cancel",
    summary="Take scheduled letters out of their schedules: pending again",
    operation_id="cancelScheduledDeadLetters",
)
async def cancel_letters(request: HttpRequest, payload: ScheduledLettersIn) -> dict[str, Any]:
    done = await service.do_cancel(user=await request.auser(), ids=_ids(payload), request=request)
    return {"changed": done}


@router.post(
    "/deadletters/scheduled/send-now",
    response={200: ScheduledChangedOut, **errors(400, 403)},
    url_name="api-deadletters-scheduled-send-now",
    summary="Make scheduled letters due now",
    operation_id="sendScheduledDeadLettersNow",
)
async def send_letters_now(request: HttpRequest, payload: ScheduledLettersIn) -> dict[str, Any]:
    done = await service.do_bring_forward(
        user=await request.auser(), ids=_ids(payload), request=request
    )
    return {"changed": done}
