"""JSON API of jobs: start a move, read a job, pause, resume, cancel. Same services as the pages."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse

from dashboard.core.api import api, error, json_body
from dashboard.jobs import control
from dashboard.jobs.move import do_move_messages


@api()
def job_list(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"jobs": [control.job_json(j) for j in control.get_recent_jobs()]})


@api()
def job_detail(request: HttpRequest, job_id: int) -> JsonResponse:
    try:
        return JsonResponse(control.job_json(control.get_job(job_id)))
    except control.JobNotFound as exc:
        return error(str(exc), "not_found", 404)


def _control(action: Callable[..., Any]) -> Callable[[HttpRequest, int], JsonResponse]:
    @api(("POST",))
    def view(request: HttpRequest, job_id: int) -> JsonResponse:
        try:
            job = action(job_id, user=request.user, request=request)
        except control.JobNotFound as exc:
            return error(str(exc), "not_found", 404)
        except control.JobStateError as exc:
            return error(str(exc), "job_state", 409)
        return JsonResponse(control.job_json(job))

    return view


pause = _control(control.do_pause_job)
resume = _control(control.do_resume_job)
cancel = _control(control.do_cancel_job)


def _or_empty(value: Any) -> Any:
    return "" if value is None else value


@api(("POST",))
async def start_move(request: HttpRequest, slug: str) -> JsonResponse:
    """POST a JSON object: vhost, queue, target_queue or target_exchange + routing_key, ..."""
    body = json_body(request)
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
    return JsonResponse(await sync_to_async(control.job_json)(job), status=202)
