"""Moving RabbitMQ messages as a job: validate, audit and start; then run it in the worker.

``do_move_messages`` (web) checks the operator role, the input and that both
ends exist, then starts a ``rabbitmq.move`` job. ``run_move_job`` (worker)
runs the cluster kind's mover (``brokers.base.move.Mover``) with the job's
checkpoint and turns its exact result into the job's verdict.

Other features reuse the mechanism: ``do_move_messages`` starts a move job
from any queue to a queue or exchange (a DLQ back to one origin), and a job
runner of another kind calls ``run_move(run, config, job_spec(job, ...,
route=...))`` to move a DLQ back to each message's own origin, with the same
progress, pause, cancel, rate limit and exact verdict.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest

from brokers.base import ClusterConfig, validate
from brokers.base.move import Mover
from brokers.rabbitmq.move import (
    Command,
    MoveProgress,
    MoveResult,
    MoveSpec,
    MoveTarget,
    StopReason,
)
from brokers.registry import require
from dashboard.browse.rabbitmq.access import (
    User,
    get_rabbitmq_config,
    require_role,
    require_writable,
)
from dashboard.core import clusters as cluster_services
from dashboard.core.params import INT64_MAX, InvalidInput
from dashboard.core.roles import OPERATOR
from dashboard.jobs.control import InvalidRate, do_start_job, parse_rate_limit
from dashboard.jobs.runner import JobOutcome, JobRun
from dashboard.models import Cluster, Job

KIND = "rabbitmq.move"
MAX_NAME = 255  # bytes: AMQP short strings (queue, exchange, routing key)


def parse_move(
    *,
    vhost: Any,
    source: Any,
    target_queue: Any = "",
    target_exchange: Any = "",
    routing_key: Any = "",
    count: Any = None,
    rate_limit: Any = None,
) -> tuple[MoveSpec, dict[str, Any]]:
    """Validate a move request; returns the spec (without the tuning) and its parameters."""
    for label, value in (("vhost", vhost), ("source queue", source)):
        if not isinstance(value, str) or not value:
            raise InvalidInput(f"the {label} is required")
    for label, field, value in (
        ("source queue", "queue", source),
        ("target queue", "target_queue", target_queue),
        ("target exchange", "target_exchange", target_exchange),
        ("routing key", "routing_key", routing_key),
    ):
        if not isinstance(value, str):
            raise InvalidInput(f"the {label} must be text")
        if len(validate.utf8(value, field)) > MAX_NAME:
            raise InvalidInput(f"the {label} is longer than {MAX_NAME} bytes")
    validate.amqp_short(vhost, "vhost")
    validate.amqp_exchange(target_exchange, "target_exchange")
    if bool(target_queue) == bool(target_exchange):
        raise InvalidInput("give either a target queue or a target exchange (with a routing key)")
    if target_queue == source:
        raise InvalidInput("the target queue is the source queue")
    limit = parse_count(count)
    try:
        rate = parse_rate_limit(rate_limit)
    except InvalidRate as exc:
        raise InvalidInput(str(exc)) from None
    if target_queue:
        target = MoveTarget.queue(target_queue)
    else:
        target = MoveTarget(target_exchange, routing_key)
    spec = MoveSpec(vhost=vhost, source=source, target=target, limit=limit, rate_limit=rate)
    parameters = {
        "vhost": vhost,
        "source": source,
        "target": {"queue": target_queue}
        if target_queue
        else {"exchange": target_exchange, "routing_key": routing_key},
        "count": limit,
    }
    return spec, parameters


def parse_count(value: Any) -> int | None:
    """How many messages to move: None (all; also empty or "all") or a whole number > 0."""
    count: int | None = _positive(value, "count", whole=True)
    return count


def _positive(value: Any, label: str, *, whole: bool) -> Any:
    if value in (None, "", "all"):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"the {label} must be a number")
    try:
        number = int(value) if whole else float(value)
    except (TypeError, ValueError):
        raise InvalidInput(f"the {label} must be a {'whole ' if whole else ''}number") from None
    if whole and isinstance(value, float) and value != number:
        raise InvalidInput(f"the {label} must be a whole number")
    if not number > 0:
        raise InvalidInput(f"the {label} must be more than 0 (or empty for no limit)")
    if whole and number > INT64_MAX:  # a job's counts are 64-bit database integers
        raise InvalidInput(f"the {label} must be at most {INT64_MAX}")
    return number


async def do_move_messages(
    slug: str,
    *,
    vhost: Any,
    source: Any,
    target_queue: Any = "",
    target_exchange: Any = "",
    routing_key: Any = "",
    count: Any = None,
    rate_limit: Any = None,
    user: User,
    request: HttpRequest | None = None,
) -> Job:
    """Start moving all (``count=None``) or the first ``count`` messages of a queue."""
    config = get_rabbitmq_config(slug)
    target_text = f"queue {source!r} in vhost {vhost!r}"
    await require_role(user, OPERATOR, action=KIND, slug=slug, target=target_text, request=request)
    require_writable(config)
    spec, parameters = parse_move(
        vhost=vhost,
        source=source,
        target_queue=target_queue,
        target_exchange=target_exchange,
        routing_key=routing_key,
        count=count,
        rate_limit=rate_limit,
    )
    # Both ends must exist now; the worker checks again when it starts.
    parameters["depth_when_asked"] = await _mover(config).check_move(config, spec)
    return await sync_to_async(_start)(slug, parameters, spec, user, target_text, request)


def _start(
    slug: str,
    parameters: dict[str, Any],
    spec: MoveSpec,
    user: User,
    target: str,
    request: HttpRequest | None,
) -> Job:
    cluster = Cluster.objects.filter(slug=slug).first()
    if cluster is None:
        cluster = cluster_services.sync_cluster_rows()[slug]
    return do_start_job(
        kind=KIND,
        cluster=cluster,
        parameters=parameters,
        user=user,
        target=target,
        selection={"source": spec.source, "count": spec.limit or "all"},
        rate_limit=spec.rate_limit,
        request=request,
    )


async def run_move_job(run: JobRun) -> JobOutcome:
    """The worker's half of ``rabbitmq.move``: rebuild the spec from the job, run it."""
    job = run.job
    if run.resumed:
        return JobOutcome(
            Job.State.FAILED,
            f"The worker stopped during this move. At its last report {job.done} of"
            f" {job.total if job.total is not None else '?'} messages had moved; a few more"
            " (up to one report interval and the prefetch window) may have moved since. Every"
            " message not moved is still in the source queue: start a new move for the rest.",
            done=job.done,
            total=job.total,
        )
    if job.cluster is None:
        return JobOutcome(Job.State.FAILED, "Failed: the job's cluster is gone.", done=0)
    params = job.parameters
    target = params["target"]
    spec = job_spec(
        job,
        vhost=params["vhost"],
        source=params["source"],
        target=MoveTarget.queue(target["queue"])
        if "queue" in target
        else MoveTarget(target["exchange"], target.get("routing_key", "")),
        limit=params.get("count"),
    )
    return await run_move(run, get_rabbitmq_config(job.cluster.slug), spec)


def job_spec(job: Job, **fields: Any) -> MoveSpec:
    """A MoveSpec with the job's rate limit, the settings' tuning and a findable name."""
    return MoveSpec(
        rate_limit=job.rate_limit,
        prefetch=settings.MQB_MOVE_PREFETCH,
        window_bytes=settings.MQB_MOVE_WINDOW_BYTES,
        connection_name=f"mqboard job {job.pk} ({job.kind})",
        stall_timeout=settings.MQB_MOVE_STALL_TIMEOUT,
        **fields,
    )


async def run_move(run: JobRun, config: ClusterConfig, spec: MoveSpec) -> JobOutcome:
    """Run one move inside a job: progress, pause and cancel through ``run``; exact outcome.

    Any job kind can call it from its runner (the dead-letter requeue moves a
    DLQ back to each message's origin with ``spec.route``).
    """

    async def checkpoint(progress: MoveProgress) -> Command:
        command = await run.checkpoint(
            done=progress.done, total=progress.total, rate=round(progress.rate, 1)
        )
        return Command(command.value)

    result = await _mover(config).move_messages(
        config, spec, checkpoint, tick=settings.MQB_JOB_PROGRESS_INTERVAL
    )
    state = {
        StopReason.COMPLETED: Job.State.DONE,
        StopReason.SOURCE_EMPTY: Job.State.DONE,
        StopReason.CANCELLED: Job.State.CANCELLED,
    }.get(result.reason, Job.State.FAILED)
    return JobOutcome(
        state,
        verdict(result, spec),
        done=result.moved,
        total=result.total,
        failed=result.failed,
        result={**dataclasses.asdict(result), "reason": str(result.reason), "rate": result.rate},
    )


def _mover(config: ClusterConfig) -> Mover:
    return require(config, lambda k: k.mover, "moving messages")


def verdict(result: MoveResult, spec: MoveSpec) -> str:
    to = "each message's own target" if spec.route else spec.target.describe()
    where = f"{spec.source!r} to {to} (vhost {spec.vhost!r})"
    took = f" in {result.elapsed:.1f} s ({result.rate:,.0f} msg/s)" if result.elapsed else ""
    left = result.total - result.moved
    if result.reason is StopReason.COMPLETED:
        if result.total == 0:
            return f"Nothing to move: queue {spec.source!r} was empty."
        return f"Moved {result.moved:,} messages from {where}{took}."
    if result.reason is StopReason.SOURCE_EMPTY:
        return (
            f"Moved {result.moved:,} of {result.total:,} messages from {where}{took}; the"
            " source ran empty first (another consumer took the rest)."
        )
    text = f"Moved {result.moved:,} of {result.total:,} messages from {where}"
    if result.reason is StopReason.CANCELLED:
        return f"Cancelled. {text}; the other {left:,} are still in {spec.source!r}."
    text = f"Stopped: {result.error}. {text}; every other message is still in {spec.source!r}."
    if result.in_doubt or result.possible_duplicates:
        text += (
            f" The connection died with {result.in_doubt:,} acks not yet confirmed by RabbitMQ:"
            f" up to {result.possible_duplicates:,} messages may now be both at the target and"
            " back in the source (duplicates with the same message id)."
        )
    return text
