"""A job as pages, the API and the websocket show it, and its progress event.

:class:`JobOut` is the one definition of a job's JSON: the jobs API answers it,
the job page embeds it, and :class:`JobProgress` carries it to the channel
group ``job.<id>`` (pushed by the web side on pause, resume and cancel, and by
the worker at each checkpoint) and from there to the browser (``ws/jobs/<id>/``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, cast

from django.urls import reverse
from django.utils.module_loading import import_string
from ninja import Field

from dashboard.core.api import DateTimeText, Out
from dashboard.core.events import Event
from dashboard.models import Job

JobState = Literal["queued", "running", "paused", "cancelled", "done", "failed"]


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


COUNTS: dict[str, str] = {}
"""Job kind -> dotted path of its ``counts(job)`` (filled from ``control.RUNNERS``)."""


def _counts(job: Job) -> dict[str, int]:
    path = COUNTS.get(job.kind)
    if not path:
        return {}
    counts: dict[str, int] = import_string(path)(job)
    return counts


class JobOut(Out):
    """A job: what it does, its state, progress, verdict and exact result."""

    id: int
    kind: str = Field(examples=["rabbitmq.move", "deadletters.requeue"])
    cluster: str | None = Field(description="the cluster's slug; null if it was removed")
    state: JobState
    created_by: str | None = Field(description="who started it; null if the user was removed")
    created_at: DateTimeText | None
    started_at: DateTimeText | None
    finished_at: DateTimeText | None
    progress_at: DateTimeText | None = Field(description="the worker's last report")
    parameters: dict[str, Any] = Field(description="what was asked, by kind")
    rate_limit: float | None = Field(description="messages per second; null for no limit")
    total: int | None = Field(description="frozen when the job starts")
    done: int
    failed: int
    rate: float | None = Field(description="messages per second, at the last report")
    verdict: str = Field(description="how it ended, in words; empty while it runs")
    result: dict[str, Any] = Field(
        description="exact outcome; for a move: moved, total, reason, error, "
        "in_doubt, possible_duplicates, published, failed, elapsed, rate"
    )
    counts: dict[str, int] = Field(
        default_factory=dict,
        description="counts read now from what the job touched, by kind; for a dead-letter "
        "requeue: requeued, came_back (requeued letters that failed again since)",
    )
    url: str = Field(description="the job's page")

    @classmethod
    def of(cls, job: Job) -> JobOut:
        """The job row as shown (reads its cluster and creator: select them with it)."""
        return cls(
            id=job.pk,
            kind=job.kind,
            cluster=job.cluster.slug if job.cluster_id and job.cluster else None,
            state=cast(JobState, job.state),
            created_by=job.created_by.get_username() if job.created_by else None,
            created_at=_when(job.created_at),
            started_at=_when(job.started_at),
            finished_at=_when(job.finished_at),
            progress_at=_when(job.progress_at),
            parameters=job.parameters,
            rate_limit=job.rate_limit,
            total=job.total,
            done=job.done,
            failed=job.failed,
            rate=job.rate,
            verdict=job.verdict,
            result=job.result,
            counts=_counts(job),
            url=reverse("job", args=[job.pk]),
        )


class JobProgress(Event):
    """The job's state now, pushed to ``job.<id>`` and relayed to its websocket."""

    type: Literal["job.progress"] = "job.progress"
    job: JobOut

    @classmethod
    def of_job(cls, job: Job) -> JobProgress:
        return cls(job=JobOut.of(job))
