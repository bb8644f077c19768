"""The dry-run page of a bulk requeue and its confirmation: requeue now, or schedule.

The inbox's bulk buttons POST to ``inbox.requeue_bulk``, which makes the dry
run (``dashboard.deadletters.preview``) and answers 303 to this page. Confirming
starts exactly the letters of the dry run: now, as a job (with a rate limit), or
later (at a time, after a delay, or spread with backoff) as a schedule.
Operators only; every confirmation is CSRF-protected and writes once
(``dashboard.core.once``); the services audit it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.views.decorators.http import require_GET, require_POST

from dashboard.core import once
from dashboard.core.audit import require_role
from dashboard.core.params import InvalidInput, parse_moment
from dashboard.core.roles import OPERATOR
from dashboard.deadletters import preview
from dashboard.deadletters import schedule as schedules
from dashboard.deadletters.requeue_job import SelectionChanged

SEE = 303


def _times(data: dict[str, Any], *names: str) -> dict[str, Any]:
    out = dict(data)
    for name in names:
        if out.get(name):
            out[name] = datetime.fromisoformat(out[name])
    return out


def page_context(record: dict[str, Any], token: str) -> dict[str, Any]:
    result = _times(record["result"], "oldest", "newest", "checked_at")
    result["targets"] = [_times(t, "oldest", "newest") for t in result["targets"]]
    return {
        "token": token,
        "run": result,
        "scope": record["source"].get("scope", ""),
        "redirected": any(t["redirected_from"] for t in result["targets"]),
        "expires_at": datetime.fromisoformat(record["expires_at"]),
    }


async def _render(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response: HttpResponse = await sync_to_async(render)(
        request, "deadletters/preview.html", context
    )
    response.status_code = status
    return response


async def _operator(request: HttpRequest, token: str) -> Any:
    user = await request.auser()
    await require_role(
        user, OPERATOR, action=preview.ACTION, slug="", target="deadletters", request=request
    )
    return user


@require_GET
async def preview_page(request: HttpRequest, token: str) -> HttpResponse:
    user = await _operator(request, token)
    try:
        record = await preview.load(token, request, user)
    except preview.PreviewExpired as exc:
        return await _render(request, {"expired": str(exc)}, status=410)
    except preview.PreviewUnavailable as exc:
        return await _render(request, {"expired": str(exc)}, status=503)
    return await _render(request, page_context(record, token))


def schedule_url(schedule_id: int) -> str:
    """The schedule's page, or the inbox's scheduled letters where there is none."""
    try:
        return reverse("deadletters-schedule", args=[schedule_id])
    except NoReverseMatch:
        return reverse("deadletters-inbox") + "?status=scheduled&view=rows"


def _float(request: HttpRequest, name: str, label: str) -> float | None:
    raw = request.POST.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise InvalidInput(f"{label} must be a number, not {raw[:20]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidInput(f"{label} must be a number")
    return value


def schedule_form(request: HttpRequest) -> dict[str, Any]:
    """``at``, ``delay`` and ``backoff`` for ``do_schedule_requeue`` from the form."""
    mode = request.POST.get("mode", "")
    if mode == "at":
        raw = request.POST.get("at", "")
        if not raw:
            raise InvalidInput("choose the time to requeue at")
        return {"at": parse_moment(raw, name="the time", error=InvalidInput)}
    minutes = _float(request, "delay_minutes", "the delay")
    delay = None if minutes is None else minutes * 60
    if mode == "after":
        if delay is None:
            raise InvalidInput("give the delay in minutes")
        return {"delay": delay}
    if mode == "spread":
        base = _float(request, "base", "the base delay")
        if base is None:
            raise InvalidInput("give the base delay in seconds")
        backoff = schedules.Backoff(
            base=base,
            factor=_float(request, "factor", "the factor") or 2.0,
            cap=_float(request, "cap", "the cap") or 3600.0,
            jitter=_float(request, "jitter", "the jitter") or 0.0,
        )
        return {"delay": delay or 0.0, "backoff": backoff}
    raise InvalidInput("choose when: at a time, after a delay, or spread out")


async def _confirm(request: HttpRequest, token: str, kind: str, start: Any) -> HttpResponse:
    """Run ``start`` once (per dry run: ``kind`` names its token); on a changed selection,
    a fresh dry run; on bad input, this page."""
    user = await _operator(request, token)
    here = reverse("deadletters-preview", args=[token])
    try:
        return await once.redirect_once(request, kind, lambda: start(user), busy=here, status=SEE)
    except preview.PreviewExpired as exc:
        messages.error(request, str(exc))
        return HttpResponseRedirect(reverse("deadletters-inbox"), status=SEE)
    except SelectionChanged as exc:
        try:
            record = await preview.load(token, request, user)
            fresh = await preview.do_dry_run_again(record, user=user, request=request)
        except InvalidInput as again:
            messages.error(request, f"{exc.message} {again.message}")
            return HttpResponseRedirect(reverse("deadletters-inbox"), status=SEE)
        messages.error(request, f"{exc.message} Below is a fresh dry run of the same choice.")
        return HttpResponseRedirect(reverse("deadletters-preview", args=[fresh]), status=SEE)
    except InvalidInput as exc:
        messages.error(request, exc.message)
        return HttpResponseRedirect(here, status=SEE)


@require_POST
async def confirm_now(request: HttpRequest, token: str) -> HttpResponse:
    async def start(user: Any) -> str:
        job = await preview.do_confirm_now(
            token, user=user, rate_limit=request.POST.get("rate_limit"), request=request
        )
        return reverse("job", args=[job.pk])

    return await _confirm(request, token, f"deadletters.requeue:{token}", start)


@require_POST
async def confirm_schedule(request: HttpRequest, token: str) -> HttpResponse:
    async def start(user: Any) -> str:
        when = schedule_form(request)
        schedule = await preview.do_confirm_schedule(token, user=user, request=request, **when)
        messages.success(
            request,
            f"Scheduled {schedule.total:,} dead letter{'s' if schedule.total != 1 else ''}"
            f" (schedule #{schedule.pk}).",
        )
        return schedule_url(schedule.pk)

    return await _confirm(request, token, f"deadletters.schedule:{token}", start)
