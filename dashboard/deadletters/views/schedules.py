"""Scheduled requeues: the schedules pages, and "Requeue later" from a letter's page.

Reads come from ``deadletters.schedule``; every write goes through its ``do_*``
functions, which check the operator role (a viewer's POST is a 403) and write
the audit. Write forms carry an idempotency key (``dashboard.core.once``): a
double click schedules, cancels or sends once.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from dashboard.core import once
from dashboard.core.params import InvalidInput, parse_moment, parse_page
from dashboard.core.roles import OPERATOR, has_role
from dashboard.deadletters import schedule as service
from dashboard.models import DeadLetter, RequeueSchedule

UNITS = {"minutes": 60, "hours": 3600}


async def _render(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    response: HttpResponse = await sync_to_async(render)(request, template, context)
    return response


@require_GET
async def schedules(request: HttpRequest) -> HttpResponse:
    """Every schedule, newest first, with its counts."""
    status = 200
    try:
        number = parse_page(request.GET.get("page"), error=InvalidInput)
    except InvalidInput as exc:
        messages.error(request, str(exc))
        number, status = 1, 400
    page = await sync_to_async(service.get_schedules)(number)
    response = await _render(request, "deadletters/schedules.html", {"page": page})
    response.status_code = status
    return response


@require_GET
async def schedule(request: HttpRequest, schedule_id: int) -> HttpResponse:
    """One schedule, its counts and its letters; operators may send or cancel the rest."""
    try:
        row = await sync_to_async(service.get_schedule)(schedule_id)
    except RequeueSchedule.DoesNotExist:
        raise Http404(f"no schedule #{schedule_id}") from None
    letters = await sync_to_async(service.schedule_letters)(schedule_id)
    context = {
        "row": row,
        "letters": letters,
        "can_act": await sync_to_async(has_role)(await request.auser(), OPERATOR),
    }
    return await _render(request, "deadletters/schedule.html", context)


def _to_schedule(schedule_id: int) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("deadletters-schedule", args=[schedule_id]))


def _to_letter(letter_id: int) -> HttpResponseRedirect:
    return HttpResponseRedirect(reverse("deadletters-detail", args=[letter_id]))


def _letters(n: int) -> str:
    return f"{n:,} dead letter{'s' if n != 1 else ''}"


@require_POST
@once.writes_once("deadletters.schedule-cancel")
async def schedule_cancel(request: HttpRequest, schedule_id: int) -> HttpResponse:
    """Cancel the rest: the schedule's waiting letters are pending again."""
    done = await service.do_cancel(
        user=await request.auser(), schedule_id=schedule_id, request=request
    )
    messages.success(request, f"Schedule #{schedule_id}: {_letters(done)} taken out.")
    return _to_schedule(schedule_id)


@require_POST
@once.writes_once("deadletters.schedule-now")
async def schedule_send_now(request: HttpRequest, schedule_id: int) -> HttpResponse:
    """Send all now: the schedule's waiting letters are due now."""
    done = await service.do_bring_forward(
        user=await request.auser(), schedule_id=schedule_id, request=request
    )
    messages.success(request, f"Schedule #{schedule_id}: {_letters(done)} due now.")
    return _to_schedule(schedule_id)


def later_form(post: Any) -> tuple[Any, float | None]:
    """``when`` = ``at`` (``at``: a moment, UTC from the browser) or ``delay`` (``amount``
    of ``unit``): the time or the delay in seconds (InvalidInput names the field)."""
    when = post.get("when", "delay")
    if when == "at":
        raw = str(post.get("at", "")).strip()
        if not raw:
            raise InvalidInput("at: give a date and time")
        return parse_moment(raw, name="at", error=InvalidInput), None
    if when != "delay":
        raise InvalidInput("when: at or delay")
    unit = str(post.get("unit", "minutes"))
    if unit not in UNITS:
        raise InvalidInput("unit: minutes or hours")
    raw = str(post.get("amount", "")).strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 6:
        raise InvalidInput("amount: a whole number of minutes or hours")
    return None, float(int(raw) * UNITS[unit])


@require_POST
@once.writes_once("deadletters.requeue-later")
async def letter_later(request: HttpRequest, letter_id: int) -> HttpResponse:
    """Requeue one letter later: at a time or after a delay, as a schedule of one."""
    user = await request.auser()
    try:
        at, delay = later_form(request.POST)
        made = await service.do_schedule_requeue(
            user=user, ids=[letter_id], at=at, delay=delay, request=request
        )
    except InvalidInput as exc:
        messages.error(request, str(exc))
    else:
        due = made.first_due.isoformat(timespec="seconds") if made.first_due else ""
        messages.success(
            request, f"Dead letter #{letter_id} is scheduled (schedule #{made.pk}), due {due}."
        )
    return _to_letter(letter_id)


@require_POST
@once.writes_once("deadletters.letter-schedule-cancel")
async def letter_cancel(request: HttpRequest, letter_id: int) -> HttpResponse:
    """Take one scheduled letter out of its schedule: pending again."""
    done = await service.do_cancel(user=await request.auser(), ids=[letter_id], request=request)
    if done:
        messages.success(request, f"Dead letter #{letter_id} is no longer scheduled.")
    else:
        messages.error(request, f"Dead letter #{letter_id} was not scheduled any more.")
    return _to_letter(letter_id)


@require_POST
@once.writes_once("deadletters.letter-schedule-now")
async def letter_send_now(request: HttpRequest, letter_id: int) -> HttpResponse:
    """Bring one scheduled letter forward: due now."""
    done = await service.do_bring_forward(
        user=await request.auser(), ids=[letter_id], request=request
    )
    if done:
        messages.success(request, f"Dead letter #{letter_id} is due now.")
    else:
        exists = await sync_to_async(
            DeadLetter.objects.filter(pk=letter_id, status=DeadLetter.Status.SCHEDULED).exists
        )()
        messages.info(
            request,
            f"Dead letter #{letter_id} was already due."
            if exists
            else f"Dead letter #{letter_id} was not scheduled any more.",
        )
    return _to_letter(letter_id)
