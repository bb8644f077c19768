"""JSON API of the dead-letter inbox: groups, letters, one letter, requeue and discard.

Reads take the inbox filter as query parameters (``cluster``, ``dlq``,
``origin``, ``reason``, ``status``, ``since``, ``until``, ``text``, ``group``,
``page``). Writes take a JSON body, need the session cookie and the CSRF token
in ``X-CSRFToken``; requeue and discard need the operator role, discard-all
the admin role. A letter that is no longer pending answers 409.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.core.paginator import Page
from django.http import HttpRequest, JsonResponse
from django.urls import reverse

from dashboard.api.deadletters import plain
from dashboard.core.api import api, error, json_body
from dashboard.core.params import InvalidInput, parse_page
from dashboard.deadletters import discard as discards
from dashboard.deadletters import inbox as reads
from dashboard.deadletters import requeue as actions
from dashboard.deadletters import requeue_job as bulk
from dashboard.deadletters import stuck
from dashboard.deadletters.views.inbox import rate_limit_of, requeue_form
from dashboard.jobs import control
from dashboard.models import DeadLetter


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.pk,
        "cluster": letter.cluster.slug,
        "vhost": letter.vhost if letter.cluster.kind == "rabbitmq" else None,
        "dlq": letter.dlq,
        "message_id": letter.message_id,
        "key": base64.b64encode(bytes(letter.key)).decode() if letter.key is not None else None,
        "origin": {
            "label": reads.origin_label(letter),
            "exchange": letter.origin_exchange,
            "routing_key": letter.origin_routing_key,
            "queue": letter.origin_queue,
            "topic": letter.origin_topic,
            "partition": letter.origin_partition,
            "offset": letter.origin_offset,
        },
        "reason": letter.reason,
        "exception_class": letter.exception_class,
        "exception_message": letter.exception_message,
        "fingerprint": letter.fingerprint,
        "attempts": letter.attempts,
        "first_failed_at": _when(letter.first_failed_at),
        "last_failed_at": _when(letter.last_failed_at),
        "captured_at": _when(letter.captured_at),
        "status": letter.status,
        "requeue_count": letter.requeue_count,
        "last_error": letter.last_error,
        "acted_at": _when(letter.acted_at),
        "failed_again_as": letter.failed_again_as_id,
        "body_size": letter.body_size,
        "body_truncated": letter.body_truncated,
    }


def _page_json(page: Page[Any], items: list[Any]) -> dict[str, Any]:
    return {
        "page": page.number,
        "pages": page.paginator.num_pages,
        "count": page.paginator.count,
        "items": items,
    }


def _page_number(request: HttpRequest) -> int:
    return parse_page(request.GET.get("page"), error=InvalidInput)


@api()
async def groups(request: HttpRequest) -> JsonResponse:
    spec = reads.InboxFilter.from_params(request.GET)
    number = _page_number(request)

    def build() -> dict[str, Any]:
        page = reads.get_inbox_groups(spec, number)
        items = [
            {k: _when(v) if isinstance(v, datetime) else v for k, v in g.items()}
            for g in page.object_list
        ]
        return _page_json(page, items)

    return JsonResponse(await sync_to_async(build)())


@api()
async def letters(request: HttpRequest) -> JsonResponse:
    spec = reads.InboxFilter.from_params(request.GET)
    number = _page_number(request)

    def build() -> dict[str, Any]:
        page = reads.get_inbox_rows(spec, number)
        return _page_json(page, [letter_json(r) for r in page.object_list])

    return JsonResponse(await sync_to_async(build)())


@api()
async def letter(request: HttpRequest, letter_id: int) -> JsonResponse:
    try:
        detail = await sync_to_async(reads.get_dead_letter_detail)(letter_id)
    except DeadLetter.DoesNotExist:
        return error(f"no dead letter #{letter_id}", "not_found", 404)
    row: DeadLetter = detail["letter"]
    body = detail["body"]
    return JsonResponse(
        {
            **letter_json(row),
            "headers": row.headers,
            "properties": row.properties,
            "failure_details": row.failure_details,
            "body": {
                "format": body.format,
                "text": body.text,
                "note": body.note,
                "size": row.body_size,
                "truncated": detail["body_cut"],
                "download": reverse("deadletters-body", args=[row.pk]),
            },
            "decoded_headers": plain(detail["headers"]),
            "x_death": plain(detail["x_death"]),
            "audit": [
                {
                    "time": _when(e.time),
                    "user": e.username or None,
                    "action": e.action,
                    "outcome": e.outcome,
                    "detail": e.detail,
                    "parameters": e.parameters,
                }
                for e in detail["audit"]
            ],
        }
    )


@api(("POST",))
async def requeue(request: HttpRequest, letter_id: int) -> JsonResponse:
    data = json_body(request)
    kind = await sync_to_async(
        DeadLetter.objects.filter(pk=letter_id).values_list("cluster__kind", flat=True).first
    )()
    if kind is None:
        return error(f"no dead letter #{letter_id}", "not_found", 404)
    if data.get("body") is not None or data.get("headers") is not None:
        data["edit"] = True
    target, edit = requeue_form(data, kind)
    try:
        result = await actions.do_requeue_dead_letter(
            letter_id, user=await request.auser(), request=request, target=target, edit=edit
        )
    except actions.AlreadyHandled as exc:
        return error(str(exc), "conflict", 409)
    answer = {"id": letter_id, "status": result.status, "sent": result.sent}
    if not result.sent:
        return error(result.message, "unroutable", 422, **answer)
    return JsonResponse({**answer, "message": result.message})


@api(("POST",))
async def release_stuck(request: HttpRequest, letter_id: int) -> JsonResponse:
    """A letter stuck "being requeued" (its requeue died mid-way) back to pending."""
    try:
        await stuck.do_release_stuck_requeue(letter_id, user=await request.auser(), request=request)
    except DeadLetter.DoesNotExist:
        return error(f"no dead letter #{letter_id}", "not_found", 404)
    return JsonResponse({"id": letter_id, "status": DeadLetter.Status.PENDING})


MAX_ID = 2**63 - 1  # SQLite's and PostgreSQL's largest integer key


def _letter_ids(value: object, *, what: str) -> list[int]:
    """Ids from JSON: whole numbers a database id can be (not true/false, not past 2^63)."""
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in value
    ):
        raise InvalidInput(f"ids: {what} (whole numbers from 1 to {MAX_ID})")
    return value


@api(("POST",))
async def discard(request: HttpRequest) -> JsonResponse:
    ids = _letter_ids(json_body(request).get("ids"), what="a non-empty list of dead letter ids")
    if not ids:
        raise InvalidInput("ids: a non-empty list of dead letter ids")
    done = await discards.do_discard_dead_letters(ids, user=await request.auser(), request=request)
    return JsonResponse({"discarded": done})


@api(("POST",))
async def discard_all(request: HttpRequest) -> JsonResponse:
    spec = reads.InboxFilter.from_params(json_body(request))
    done = await discards.do_discard_matching(spec, user=await request.auser(), request=request)
    return JsonResponse({"discarded": done})


def _ids_or_filter(data: dict[str, Any]) -> tuple[list[int] | None, reads.InboxFilter | None]:
    """``{"ids": [...]}`` or ``{"filter": {...}}`` of a bulk action."""
    ids = data.get("ids")
    if ids is not None:
        return _letter_ids(ids, what="a list of dead letter ids"), None
    given = data.get("filter")
    if not isinstance(given, dict):
        raise InvalidInput("give ids or a filter")
    return None, reads.InboxFilter.from_params(given)


@api(("POST",))
async def purge(request: HttpRequest) -> JsonResponse:
    """Admin: ``{"ids": [...]}`` or ``{"filter": {...}}``; deleted now, no retention."""
    data = json_body(request)
    ids, spec = _ids_or_filter(data)
    done = await discards.do_purge_dead_letters(
        user=await request.auser(), ids=ids, spec=spec, request=request
    )
    return JsonResponse({"purged": done})


@api(("POST",))
async def requeue_bulk(request: HttpRequest) -> JsonResponse:
    """``{"ids": [...]}`` or ``{"filter": {...}}`` (a group: ``{"filter": {"group": fp}}``)."""
    data = json_body(request)
    ids, spec = _ids_or_filter(data)
    job = await bulk.do_start_bulk_requeue(
        user=await request.auser(),
        ids=ids,
        spec=spec,
        rate_limit=rate_limit_of(data.get("rate_limit")),
        request=request,
    )
    return JsonResponse({"job": await sync_to_async(control.job_json)(job)}, status=202)
