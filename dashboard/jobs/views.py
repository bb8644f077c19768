"""Job pages (list, one job with live progress, pause/resume/cancel) and the move form."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from dashboard.browse.rabbitmq import NotFound, get_rabbitmq_config
from dashboard.core import display, once
from dashboard.core.params import InvalidInput
from dashboard.core.roles import OPERATOR, has_role
from dashboard.jobs import control
from dashboard.jobs.move import do_move_messages

CONTROLS = {
    "pause": control.do_pause_job,
    "resume": control.do_resume_job,
    "cancel": control.do_cancel_job,
}


@require_GET
def job_list(request: HttpRequest) -> HttpResponse:
    jobs = control.get_recent_jobs()
    for job in jobs:
        job.title = control.kind_title(job.kind)  # type: ignore[attr-defined]
    return render(request, "jobs/list.html", {"jobs": jobs})


FINAL_STATES = ("done", "failed", "cancelled")


def average_rate(job: Any) -> float | None:
    """A finished job's messages per second over its whole run, or None when not known."""
    if job.started_at is None or job.finished_at is None:
        return None
    seconds = (job.finished_at - job.started_at).total_seconds()
    return job.done / seconds if seconds > 0 else None


@require_GET
def job_detail(request: HttpRequest, job_id: int) -> HttpResponse:
    try:
        job = control.get_job(job_id)
    except control.JobNotFound:
        raise Http404(f"no job #{job_id}") from None
    context = {
        "job": job,
        "job_kind": control.RUNNERS.get(job.kind),
        "job_title": control.kind_title(job.kind),
        "state_tone": display.tone(job.state),
        "job_data": control.job_json(job),
        "can_control": has_role(request.user, OPERATOR),
        "stale_after": settings.MQB_JOB_STALE_AFTER,
        "finished": job.state in FINAL_STATES,
        "average_rate": average_rate(job),
    }
    return render(request, "jobs/detail.html", context)


@require_POST
def job_control(request: HttpRequest, job_id: int, action: str) -> HttpResponse:
    do_action = CONTROLS.get(action)
    if do_action is None:
        raise Http404(f"no action {action!r}")
    try:
        do_action(job_id, user=request.user, request=request)
    except control.JobNotFound:
        raise Http404(f"no job #{job_id}") from None
    except control.JobStateError as exc:
        messages.error(request, str(exc))
    return HttpResponseRedirect(reverse("job", args=[job_id]))


async def move_form(request: HttpRequest, slug: str) -> HttpResponse:
    """GET: the form (``?vhost=..&queue=..`` prefill it); POST: start the move job."""
    config = get_rabbitmq_config(slug)
    user = await request.auser()
    if request.method != "POST" and not await sync_to_async(has_role)(user, OPERATOR):
        # A POST goes to the service, which refuses it too, and audits the refusal.
        raise PermissionDenied(f"moving messages needs the {OPERATOR} role")
    source = request.GET.get("queue", request.GET.get("name", ""))
    form: dict[str, Any] = {
        "vhost": request.GET.get("vhost", "/"),
        "source": source,
        "target_kind": "queue",
        "target_queue": "",
        "target_exchange": "",
        "routing_key": "",
        "count": "",
        "rate_limit": "",
    }
    error = ""
    status = 200
    if request.method == "POST":
        form.update({k: request.POST.get(k, form[k]) for k in form})
        target = form["target_kind"]

        async def start() -> str:
            job = await do_move_messages(
                slug,
                vhost=form["vhost"],
                source=form["source"],
                target_queue=form["target_queue"] if target == "queue" else "",
                target_exchange=form["target_exchange"] if target == "exchange" else "",
                routing_key=form["routing_key"] if target == "exchange" else "",
                count=form["count"].strip(),
                rate_limit=form["rate_limit"].strip(),
                user=user,
                request=request,
            )
            return reverse("job", args=[job.pk])

        try:
            # A second POST of the same form (a double click) goes to the first one's job.
            return await once.redirect_once(request, "rabbitmq.move", start, busy=reverse("jobs"))
        except (InvalidInput, NotFound) as exc:
            error = exc.message if isinstance(exc, NotFound) else str(exc)
            status = 404 if isinstance(exc, NotFound) else 400
    elif request.method != "GET":
        return HttpResponse(status=405)
    context = {
        "cluster": config,
        "slug": slug,
        "tab": "queues",
        "form": form,
        "error": error,
        "prefetch": settings.MQB_MOVE_PREFETCH,
    }
    return await sync_to_async(render)(request, "jobs/move.html", context, status=status)
