"""JSON API of jobs: start a RabbitMQ move, read a job, pause, resume, cancel.

The same services as the pages. Follow a job's progress here or on its
websocket (``ws/jobs/<id>/``), which sends the same :class:`JobOut`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status
from pydantic import ValidationInfo, field_validator

from dashboard.core.api import Out, error, errors, invalid
from dashboard.core.params import INT64_MAX, InvalidParameter
from dashboard.jobs import control as jobs_control
from dashboard.jobs.control import MAX_RATE, InvalidRate, parse_rate_limit
from dashboard.jobs.events import JobOut
from dashboard.jobs.move import do_move_messages, parse_count

router = Router(tags=["jobs"])


class JobsOut(Out):
    jobs: list[JobOut] = Field(description="newest first")


@router.get(
    "/jobs",
    response={200: JobsOut},
    url_name="api-jobs",
    summary="The 50 most recent jobs, newest first",
    operation_id="listJobs",
)
def job_list(request: HttpRequest) -> dict[str, Any]:
    return {"jobs": [JobOut.of(j) for j in jobs_control.get_recent_jobs()]}


@router.get(
    "/jobs/{int:job_id}",
    response={200: JobOut, **errors(404)},
    url_name="api-job",
    summary="One job: state, progress, verdict and exact result",
    operation_id="getJob",
)
def job_detail(request: HttpRequest, job_id: int) -> Any:
    try:
        return JobOut.of(jobs_control.get_job(job_id))
    except jobs_control.JobNotFound as exc:
        return error(str(exc), "not_found", 404)


def _control(
    action: Callable[..., Any], name: str, summary: str
) -> Callable[[HttpRequest, int], Any]:
    def control(request: HttpRequest, job_id: int) -> Any:
        try:
            job = action(job_id, user=request.user, request=request)
        except jobs_control.JobNotFound as exc:
            return error(str(exc), "not_found", 404)
        except jobs_control.JobStateError as exc:
            return error(str(exc), "job_state", 409)
        return JobOut.of(job)

    control.__name__ = f"{name}_job"
    return router.post(
        f"/jobs/{{int:job_id}}/{name}",
        response={200: JobOut, **errors(404, 409)},
        url_name=f"api-job-{name}",
        summary=summary,
        description="409 (code job_state) when the job's state does not allow it.",
        operation_id=f"{name}Job",
    )(control)


pause = _control(
    jobs_control.do_pause_job,
    "pause",
    "Pause a queued or running job (noticed within about a second); operator",
)
resume = _control(jobs_control.do_resume_job, "resume", "Resume a paused job; operator")
cancel = _control(
    jobs_control.do_cancel_job,
    "cancel",
    "Cancel a job; what was done stays done, the rest stays put; operator",
)


class MoveIn(Schema):
    """Move to ``target_queue``, or publish to ``target_exchange`` with ``routing_key``.

    Missing or null text fields are empty; ``count`` and ``rate_limit`` also take
    an empty string for "no limit", as the form does.
    """

    vhost: str
    queue: str = Field(description="the source queue")
    target_queue: str | None = Field(None, description="move to this queue, or:")
    target_exchange: str | None = Field(None, description="publish to this exchange")
    routing_key: str | None = Field(None, description="with this routing key")
    count: int | None = Field(
        None,
        ge=1,
        le=INT64_MAX,
        description="the first N messages; null for all (the depth at start)",
    )
    rate_limit: float | None = Field(
        None, gt=0, le=MAX_RATE, description="messages per second; null for no limit"
    )

    @field_validator("vhost", "queue", mode="before")
    @classmethod
    def _required_text(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            label = "source queue" if info.field_name == "queue" else "vhost"
            raise invalid(f"the {label} is required")
        return value

    @field_validator("target_queue", "target_exchange", "routing_key", mode="before")
    @classmethod
    def _text(cls, value: Any, info: ValidationInfo) -> Any:
        if value is not None and not isinstance(value, str):
            label = (info.field_name or "").replace("_", " ")
            raise invalid(f"the {label} must be text")
        return value

    @field_validator("count", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        try:
            return parse_count(value)
        except InvalidParameter as exc:
            raise invalid(exc.message) from None

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate_limit(cls, value: Any) -> Any:
        try:
            return parse_rate_limit(value)
        except InvalidRate as exc:
            raise invalid(str(exc)) from None


@router.post(
    "/clusters/{slug}/rabbitmq/move",
    response={202: JobOut, **errors(400, 404, 409, 502, 503, 504)},
    url_name="api-rabbitmq-move",
    summary="Start moving all, or the first N, messages of a queue; operator",
    description="Runs as a job in the Celery worker: consume with manual acks, "
    "publish with publisher confirms and mandatory routing, ack only confirmed copies. "
    "Properties and headers are kept; x-mqboard-requeue-count is incremented. "
    "'All' is the source's ready count when the job starts. Follow progress at "
    "/api/jobs/{id} or the websocket ws/jobs/{id}/.",
    operation_id="startRabbitmqMove",
)
async def start_move(request: HttpRequest, slug: str, payload: MoveIn) -> Any:
    job = await do_move_messages(
        slug,
        vhost=payload.vhost,
        source=payload.queue,
        target_queue=payload.target_queue or "",
        target_exchange=payload.target_exchange or "",
        routing_key=payload.routing_key or "",
        count=payload.count,
        rate_limit=payload.rate_limit,
        user=await request.auser(),
        request=request,
    )
    return Status(202, await sync_to_async(JobOut.of)(job))
