"""JSON API of jobs: start a move, read a job, pause, resume, cancel. Same services as the pages."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET, require_POST

from dashboard.core.api import method_not_allowed
from dashboard.services import jobs
from dashboard.services.rabbitmq import InvalidInput
from dashboard.services.rabbitmq_move import do_move_messages


def error(message: str, code: str, status: int) -> JsonResponse:
    return JsonResponse({"error": message, "code": code}, status=status)


@require_GET
def job_list(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"jobs": [jobs.job_json(j) for j in jobs.get_recent_jobs()]})


@require_GET
def job_detail(request: HttpRequest, job_id: int) -> JsonResponse:
    try:
        return JsonResponse(jobs.job_json(jobs.get_job(job_id)))
    except jobs.JobNotFound as exc:
        return error(str(exc), "not_found", 404)


def _control(action: Callable[..., Any]) -> Callable[[HttpRequest, int], JsonResponse]:
    @require_POST
    def view(request: HttpRequest, job_id: int) -> JsonResponse:
        try:
            job = action(job_id, user=request.user, request=request)
        except jobs.JobNotFound as exc:
            return error(str(exc), "not_found", 404)
        except PermissionDenied as exc:
            return error(str(exc), "forbidden", 403)
        except jobs.JobStateError as exc:
            return error(str(exc), "job_state", 409)
        return JsonResponse(jobs.job_json(job))

    return view


pause = _control(jobs.do_pause_job)
resume = _control(jobs.do_resume_job)
cancel = _control(jobs.do_cancel_job)


def _or_empty(value: Any) -> Any:
    return "" if value is None else value


async def start_move(request: HttpRequest, slug: str) -> JsonResponse:
    """POST a JSON object: vhost, queue, target_queue or target_exchange + routing_key, ..."""
    if request.method != "POST":
        return method_not_allowed(("POST",))
    try:
        body = json.loads(request.body or b"{}")
    except ValueError as exc:
        return error(f"the body is not JSON: {exc}", "invalid", 400)
    if not isinstance(body, dict):
        return error("the body must be a JSON object", "invalid", 400)
    try:
        job = await do_move_messages(
            slug,
            vhost=body.get("vhost"),
            source=body.get("queue"),
            # Missing or null is empty; another type reaches the parser, which refuses it.
            target_queue=_or_empty(body.get("target_queue")),
            target_exchange=_or_empty(body.get("target_exchange")),
            routing_key=_or_empty(body.get("routing_key")),
            count=body.get("count"),
            rate_limit=body.get("rate_limit"),
            user=await request.auser(),
            request=request,
        )
    except InvalidInput as exc:
        return error(str(exc), "invalid", 400)
    except PermissionDenied as exc:
        return error(str(exc), "forbidden", 403)
    return JsonResponse(await sync_to_async(jobs.job_json)(job), status=202)
