"""JSON API of the dry run of a bulk requeue (operator), as the dry-run page does it.

``POST /deadletters/preview`` with ``{"ids": [...]}`` or ``{"filter": {...}}``
(a group is ``{"filter": {"group": fingerprint}}``) and ``upto`` freezes the
selection and answers the dry run with its token. ``POST
/deadletters/preview/{token}/requeue`` starts exactly those letters as a job;
``/schedule`` schedules them (``at`` or ``delay``, optionally spread with
``backoff``). The token is this session's, for ``MQB_DLQ_PREVIEW_TTL`` seconds, and
used up once the requeue started: 410 when unknown, expired or used. Letters that
changed meanwhile: 409 with a fresh dry run's ``token``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from ninja import Router, Status
from pydantic import Field

from dashboard.core.api import DateTimeText, ErrorOut, Out, Refusal, errors
from dashboard.core.params import InvalidInput
from dashboard.deadletters import preview
from dashboard.deadletters import schedule as schedules
from dashboard.deadletters.api import _ids_or_filter
from dashboard.deadletters.requeue_job import SelectionChanged
from dashboard.deadletters.schemas import MAX_ID, BulkRequeueOut, In, RateLimit, SelectionIn
from dashboard.deadletters.views.preview import schedule_url
from dashboard.jobs import control

router = Router(tags=["dead letters"])


class Expired(Refusal):
    status = 410
    code = "expired"


class DryRunIn(SelectionIn):
    upto: int | None = Field(
        None, ge=1, le=MAX_ID, description="leave out letters with a higher id"
    )


class DryRunTargetOut(Out):
    cluster: str
    where: str = Field(description="the target as people read it: exchange / routing key, topic")
    destination: dict[str, str] = Field(description="the kind's target fields")
    redirected_from: str = Field(description="the origin a redirect moved them from, or empty")
    letters: int
    poison: int
    parked: int
    oldest: DateTimeText | None = Field(description="the oldest failure time")
    newest: DateTimeText | None = Field(description="the newest failure time")
    unroutable: bool = Field(description="the target does not exist now")
    unknown: bool = Field(description="whether it exists could not be checked")
    why: str


class DryRunOut(Out):
    token: str = Field(description="confirm with it (this session, until expires_at)")
    url: str = Field(description="the dry run's page")
    expires_at: DateTimeText
    scope: str
    total: int
    unroutable: int = Field(description="letters whose target does not exist now")
    unchecked: int = Field(description="letters whose target could not be checked")
    poison: int
    poison_warning: str
    parked: int
    oldest: DateTimeText | None
    newest: DateTimeText | None
    checked_at: DateTimeText
    targets: list[DryRunTargetOut]


class DryRunRequeueIn(In):
    rate_limit: RateLimit = None


class DryRunBackoffIn(In):
    base: float = Field(gt=0, description="the first gap, seconds")
    factor: float = Field(2.0, ge=1, le=100)
    cap: float = Field(3600.0, gt=0, description="the largest gap, seconds")
    jitter: float = Field(0.0, ge=0, le=1)


class DryRunScheduleIn(In):
    at: datetime | None = Field(None, description="when (with its time zone); or delay")
    delay: float | None = Field(None, ge=0, description="seconds from now; or at")
    backoff: DryRunBackoffIn | None = None


class DryRunChangedOut(ErrorOut):
    """Some letters of the dry run changed meanwhile: nothing started (code ``changed``)."""

    token: str = Field(description="a fresh dry run of the same choice, to confirm instead")


class DryRunScheduledOut(Out):
    schedule: int
    url: str
    total: int
    first_due: DateTimeText | None
    last_due: DateTimeText | None


def _answer(token: str, record: dict[str, Any]) -> dict[str, Any]:
    return {
        "token": token,
        "url": reverse("deadletters-preview", args=[token]),
        "expires_at": record["expires_at"],
        "scope": record["source"]["scope"],
        **record["result"],
    }


@router.post(
    "/deadletters/preview",
    response={200: DryRunOut, **errors(400, 503)},
    url_name="api-deadletters-preview",
    summary="Dry run of a bulk requeue: letters per target, unroutable, poison (operator)",
    description="The selection (pending letters now, up to upto) is frozen under the token.",
    operation_id="previewDeadLetterRequeue",
)
async def make_dry_run(request: HttpRequest, payload: DryRunIn | None = None) -> dict[str, Any]:
    ids, spec = _ids_or_filter(payload)
    token, record = await preview.do_dry_run(
        user=await request.auser(),
        ids=ids,
        spec=spec,
        upto=payload.upto if payload is not None else None,
        request=request,
    )
    return _answer(token, record)


async def _confirm(request: HttpRequest, token: str, start: Any) -> Any:
    user = await request.auser()
    try:
        return await start(user)
    except preview.PreviewExpired as exc:
        raise Expired(exc.message) from None
    except SelectionChanged as exc:
        record = await preview.load(token, request, user)
        fresh = await preview.do_dry_run_again(record, user=user, request=request)
        return JsonResponse({"error": exc.message, "code": "changed", "token": fresh}, status=409)


@router.post(
    "/deadletters/preview/{token}/requeue",
    response={202: BulkRequeueOut, **errors(400, 410, 503), 409: DryRunChangedOut},
    url_name="api-deadletters-preview-requeue",
    summary="Requeue exactly the letters of a dry run now, as a job (operator)",
    operation_id="requeueDeadLetterPreview",
)
async def requeue_now(
    request: HttpRequest, token: str, payload: DryRunRequeueIn | None = None
) -> Any:
    rate = payload.rate_limit if payload is not None else None
    if isinstance(rate, bool):  # JSON true/false is not a rate
        raise InvalidInput("rate_limit must be a number of messages per second")

    async def start(user: Any) -> Status[dict[str, Any]]:
        job = await preview.do_confirm_now(
            token,
            user=user,
            rate_limit=rate,
            request=request,
        )
        return Status(202, {"job": await sync_to_async(control.job_json)(job)})

    return await _confirm(request, token, start)


@router.post(
    "/deadletters/preview/{token}/schedule",
    response={201: DryRunScheduledOut, **errors(400, 410, 503), 409: DryRunChangedOut},
    url_name="api-deadletters-preview-schedule",
    summary="Schedule exactly the letters of a dry run: at a time, after a delay, spread",
    operation_id="scheduleDeadLetterPreview",
)
async def schedule(request: HttpRequest, token: str, payload: DryRunScheduleIn) -> Any:
    backoff = None
    if payload.backoff is not None:
        b = payload.backoff
        backoff = schedules.Backoff(base=b.base, factor=b.factor, cap=b.cap, jitter=b.jitter)

    # Neither a time nor a delay: from now.
    delay = payload.delay if payload.delay is not None or payload.at is not None else 0.0

    async def start(user: Any) -> Status[dict[str, Any]]:
        made = await preview.do_confirm_schedule(
            token,
            user=user,
            at=payload.at,
            delay=delay,
            backoff=backoff,
            request=request,
        )
        return Status(
            201,
            {
                "schedule": made.pk,
                "url": schedule_url(made.pk),
                "total": made.total,
                "first_due": made.first_due.isoformat() if made.first_due else None,
                "last_due": made.last_due.isoformat() if made.last_due else None,
            },
        )

    return await _confirm(request, token, start)
