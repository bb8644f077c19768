"""JSON API of dead letters: the dead-letter queues of every cluster, and the inbox.

Queues: the list across clusters, manage and let go (admin). Their writes take
``{"cluster", "vhost", "name"}`` (``vhost`` is ignored where the broker kind has
no vhosts).

Inbox: reads take the inbox filter as query parameters (``cluster``, ``dlq``,
``origin``, ``reason``, ``status``, ``since``, ``until``, ``text``, ``group``,
``page``). Requeue, discard and bulk requeue need the operator role;
discard-all, purge and DLQ management the admin role. A letter that is no
longer pending answers 409.

Writes need the session cookie and the CSRF token in ``X-CSRFToken``. Broker
errors become JSON through ``dashboard.core.errors``. Schemas are in
:mod:`dashboard.deadletters.schemas`.
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import datetime
from typing import Annotated, Any

from asgiref.sync import sync_to_async
from django.core.paginator import Page
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from ninja import Path, Query, Router, Status
from pydantic import WithJsonSchema

from brokers.registry import kind_named
from dashboard.core.api import error, errors
from dashboard.core.params import InvalidInput, parse_page
from dashboard.deadletters import (
    ClusterDeadLetterQueues,
    DeadLetterQueueRow,
    do_manage_dlq,
    do_release_dlq,
    get_dead_letter_queues,
    stuck,
)
from dashboard.deadletters import discard as discards
from dashboard.deadletters import inbox as reads
from dashboard.deadletters import requeue as actions
from dashboard.deadletters import requeue_job as bulk
from dashboard.deadletters.schemas import (
    MAX_ID,
    BulkRequeueIn,
    BulkRequeueOut,
    DeadLetterDetailOut,
    DeadLetterGroupsOut,
    DeadLetterQueuesOut,
    DeadLetterQueueTarget,
    DeadLettersOut,
    DiscardedOut,
    DiscardIn,
    InboxFilterIn,
    InboxQuery,
    ManagedOut,
    PurgedOut,
    ReleasedOut,
    RequeuedOut,
    RequeueIn,
    SelectionIn,
    UnroutableOut,
)
from dashboard.deadletters.views.inbox import requeue_form
from dashboard.jobs import control
from dashboard.models import DeadLetter

router = Router(tags=["dead letters"])

# Django's int converter takes the digits; an id no letter can have is not found.
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
LetterId = Path[Annotated[int, WithJsonSchema(ID_SCHEMA)]]


def plain(value: Any) -> Any:
    """Result dataclasses as JSON-ready data (datetimes ISO 8601)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _not_found(letter_id: int) -> JsonResponse:
    return error(f"no dead letter #{letter_id}", "not_found", 404)


# -- dead-letter queues --------------------------------------------------------------


def row_json(row: DeadLetterQueueRow) -> dict[str, Any]:
    dlq = row.dlq
    return {
        "name": dlq.name,
        "vhost": dlq.vhost if kind_named(dlq.kind).has_vhosts else None,
        "depth": dlq.depth,
        "found_by": list(dlq.found_by),
        "sources": plain(dlq.sources),
        "type": dlq.queue_type,
        "exists": dlq.exists,
        "capturable": dlq.capturable,
        "managed": plain(row.managed),
    }


def cluster_json(group: ClusterDeadLetterQueues) -> dict[str, Any]:
    return {
        "slug": group.slug,
        "name": group.name,
        "kind": group.kind,
        "read_only": group.read_only,
        "error": group.error or None,
        "checked_at": plain(group.checked_at),
        "scanned": group.scanned,
        "complete": group.complete,
        "notes": list(group.notes),
        "dlqs": [row_json(r) for r in group.rows],
    }


@router.get(
    "/deadletters/queues",
    response=DeadLetterQueuesOut,
    url_name="api-deadletters-queues",
    summary="Every dead-letter queue and topic of every cluster",
    description="RabbitMQ: queues fed by a dead-letter exchange (queue argument or policy, "
    "bindings followed) and queues named like dlq; Kafka: topics named like *.DLT, *-dlt, "
    "*-dlq, *.dlq and those in MQB_KAFKA_DLQ_TOPICS. With their sources, depth and managed "
    "state. A cluster that cannot be asked has an error; its managed DLQs are still listed.",
    operation_id="deadLetterQueues",
)
async def queues(request: HttpRequest) -> dict[str, Any]:
    groups = await get_dead_letter_queues()
    return {"clusters": [cluster_json(g) for g in groups]}


def _target(target: DeadLetterQueueTarget) -> tuple[str, str, str]:
    if not target.name:
        raise InvalidInput("cluster and name are required")
    return target.cluster, target.vhost or "", target.name


@router.post(
    "/deadletters/queues/manage",
    response={200: ManagedOut, **errors(400, 403, 404, 409, 502, 503, 504)},
    url_name="api-deadletters-manage",
    summary="Take over a DLQ: the collector captures it into the database (admin)",
    description="The collector consumes it (RabbitMQ: manual acks after each database commit; "
    "Kafka: offsets committed after each commit) and stores every dead letter once. 404: no "
    "such cluster, or not a dead-letter queue mqboard knows of; 409: read-only cluster, or a "
    "stream (which cannot be captured). Audited.",
    operation_id="manageDeadLetterQueue",
)
async def manage(request: HttpRequest, payload: DeadLetterQueueTarget) -> dict[str, Any]:
    cluster, vhost, name = _target(payload)
    changed = await do_manage_dlq(cluster, vhost, name, user=await request.auser(), request=request)
    return {"managed": True, "changed": changed}


@router.post(
    "/deadletters/queues/release",
    response={200: ManagedOut, **errors(400, 403, 404)},
    url_name="api-deadletters-release",
    summary="Let a DLQ go: capture stops, captured rows stay (admin)",
    operation_id="releaseDeadLetterQueue",
)
async def release(request: HttpRequest, payload: DeadLetterQueueTarget) -> dict[str, Any]:
    cluster, vhost, name = _target(payload)
    await do_release_dlq(cluster, vhost, name, user=await request.auser(), request=request)
    return {"managed": False, "changed": True}


# -- the inbox -----------------------------------------------------------------------


def letter_json(letter: DeadLetter) -> dict[str, Any]:
    return {
        "id": letter.pk,
        "cluster": letter.cluster.slug,
        "vhost": letter.vhost if kind_named(letter.cluster.kind).has_vhosts else None,
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
        "came_back": letter.came_back,
        "poison": letter.poison,
        "parked": letter.parked,
        "due_at": _when(letter.due_at),
        "schedule": letter.schedule_id,
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


def _spec(params: InboxFilterIn | InboxQuery) -> reads.InboxFilter:
    return reads.InboxFilter.from_params(params.model_dump())


@router.get(
    "/deadletters/groups",
    response={200: DeadLetterGroupsOut, **errors(400)},
    url_name="api-deadletters-groups",
    summary="The inbox: dead letters grouped by origin and reason, with counts",
    operation_id="deadLetterGroups",
)
async def groups(request: HttpRequest, query: Query[InboxQuery]) -> dict[str, Any]:
    spec = _spec(query)
    number = parse_page(query.page, error=InvalidInput)

    def build() -> dict[str, Any]:
        # Reused while the letters are unchanged, like the inbox page (read only).
        page = reads.inbox_groups(spec, number)
        items = [_group_json(g) for g in page.object_list]
        return _page_json(page, items)

    return await sync_to_async(build)()


# Keys of a group that only the inbox page uses (its links and columns).
_PAGE_ONLY = ("has_vhosts", "origin_noun", "origin_name", "exception_name")


def _group_json(group: dict[str, Any]) -> dict[str, Any]:
    item = {k: _when(v) if isinstance(v, datetime) else v for k, v in group.items()}
    if not item["has_vhosts"]:
        item["vhost"] = None
    for key in _PAGE_ONLY:
        item.pop(key)
    return item


@router.get(
    "/deadletters/letters",
    response={200: DeadLettersOut, **errors(400)},
    url_name="api-deadletters-letters",
    summary="Dead letters matching the filter, newest first",
    operation_id="deadLetters",
)
async def letters(request: HttpRequest, query: Query[InboxQuery]) -> dict[str, Any]:
    spec = _spec(query)
    number = parse_page(query.page, error=InvalidInput)

    def build() -> dict[str, Any]:
        page = reads.inbox_rows(spec, number)
        return _page_json(page, [letter_json(r) for r in page.object_list])

    return await sync_to_async(build)()


@router.get(
    "/deadletters/letters/{int:letter_id}",
    response={200: DeadLetterDetailOut, **errors(404)},
    url_name="api-deadletters-letter",
    summary="One dead letter: decoded body, headers, x-death, actions taken",
    operation_id="deadLetter",
)
async def letter(request: HttpRequest, letter_id: LetterId) -> Any:
    if not 1 <= letter_id <= MAX_ID:
        return _not_found(letter_id)
    try:
        detail = await sync_to_async(reads.get_dead_letter_detail)(letter_id)
    except DeadLetter.DoesNotExist:
        return _not_found(letter_id)
    row: DeadLetter = detail["letter"]
    body = detail["body"]
    return {
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


@router.post(
    "/deadletters/letters/{int:letter_id}/requeue",
    response={
        200: RequeuedOut,
        422: UnroutableOut,
        **errors(400, 403, 404, 409, 502, 503, 504),
    },
    url_name="api-deadletters-requeue",
    summary="Requeue one dead letter to its origin or a chosen target (operator)",
    description="Publishes with confirms and mandatory routing (RabbitMQ) or an idempotent "
    "producer (Kafka), adds x-mqboard-requeue-count, then marks the letter requeued. A second "
    "request for the same letter answers 409 (not pending: already requeued, being requeued or "
    "discarded) and sends nothing. 422: not sent (unroutable, or unknown topic); the letter is "
    "then requeue_failed. Audited, with the diff of any edit.",
    operation_id="requeueDeadLetter",
)
async def requeue(
    request: HttpRequest, letter_id: LetterId, payload: RequeueIn | None = None
) -> Any:
    if not 1 <= letter_id <= MAX_ID:
        return _not_found(letter_id)
    kind = await sync_to_async(
        DeadLetter.objects.filter(pk=letter_id).values_list("cluster__kind", flat=True).first
    )()
    if kind is None:
        return _not_found(letter_id)
    data = payload.model_dump(exclude_none=True) if payload is not None else {}
    if "body" in data or "headers" in data:
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
        return Status(422, {"error": result.message, "code": "unroutable", **answer})
    return {**answer, "message": result.message}


@router.post(
    "/deadletters/letters/{int:letter_id}/release",
    response={200: ReleasedOut, **errors(400, 403, 404)},
    url_name="api-deadletters-release-stuck",
    summary="Put a letter stuck 'being requeued' back to pending (operator)",
    description="For a requeue that died between the broker's confirm and recording it: "
    "allowed once the claim is older than MQB_DLQ_STUCK_AFTER seconds and no running job holds "
    "it. The message may already be at its origin. Audited.",
    operation_id="releaseStuckDeadLetter",
)
async def release_stuck(request: HttpRequest, letter_id: LetterId) -> Any:
    if not 1 <= letter_id <= MAX_ID:
        return _not_found(letter_id)
    try:
        await stuck.do_release_stuck_requeue(letter_id, user=await request.auser(), request=request)
    except DeadLetter.DoesNotExist:
        return _not_found(letter_id)
    return {"id": letter_id, "status": DeadLetter.Status.PENDING}


def _letter_ids(value: object, *, what: str) -> list[int]:
    """Ids from JSON: whole numbers a database id can be (not true/false, not past 2^63)."""
    if not isinstance(value, list) or not all(
        isinstance(i, int) and not isinstance(i, bool) and 1 <= i <= MAX_ID for i in value
    ):
        raise InvalidInput(f"ids: {what} (whole numbers from 1 to {MAX_ID})")
    return value


@router.post(
    "/deadletters/discard",
    response={200: DiscardedOut, **errors(400, 403)},
    url_name="api-deadletters-discard",
    summary="Discard dead letters by id (operator); rows are kept, marked discarded",
    operation_id="discardDeadLetters",
)
async def discard(request: HttpRequest, payload: DiscardIn) -> dict[str, Any]:
    ids = _letter_ids(payload.ids, what="a non-empty list of dead letter ids")
    if not ids:
        raise InvalidInput("ids: a non-empty list of dead letter ids")
    done = await discards.do_discard_dead_letters(ids, user=await request.auser(), request=request)
    return {"discarded": done}


@router.post(
    "/deadletters/discard-all",
    response={200: DiscardedOut, **errors(400, 403)},
    url_name="api-deadletters-discard-all",
    summary="Discard every pending dead letter matching a filter (admin)",
    operation_id="discardAllDeadLetters",
)
async def discard_all(request: HttpRequest, payload: InboxFilterIn | None = None) -> dict[str, Any]:
    spec = _spec(payload or InboxFilterIn.model_validate({}))
    done = await discards.do_discard_matching(spec, user=await request.auser(), request=request)
    return {"discarded": done}


def _ids_or_filter(
    selection: SelectionIn | None,
) -> tuple[list[int] | None, reads.InboxFilter | None]:
    """``{"ids": [...]}`` or ``{"filter": {...}}`` of a bulk action."""
    if selection is None:
        raise InvalidInput("give ids or a filter")
    if selection.ids is not None:
        return _letter_ids(selection.ids, what="a list of dead letter ids"), None
    if selection.filter is None:
        raise InvalidInput("give ids or a filter")
    return None, _spec(selection.filter)


@router.post(
    "/deadletters/purge",
    response={200: PurgedOut, **errors(400, 403)},
    url_name="api-deadletters-purge",
    summary="Delete dead letters now, a selection or all matching a filter (admin)",
    description="Unlike discard, nothing is kept for the retention period. Letters being "
    "requeued are never purged. One audit entry with the ids or the filter.",
    operation_id="purgeDeadLetters",
)
async def purge(request: HttpRequest, payload: SelectionIn | None = None) -> dict[str, Any]:
    ids, spec = _ids_or_filter(payload)
    done = await discards.do_purge_dead_letters(
        user=await request.auser(), ids=ids, spec=spec, request=request
    )
    return {"purged": done}


@router.post(
    "/deadletters/requeue-bulk",
    response={202: BulkRequeueOut, **errors(400, 403, 503)},
    url_name="api-deadletters-requeue-bulk",
    summary="Requeue a selection, a group or everything matching a filter, as a job",
    description='Operator. A group is a filter: {"filter": {"group": fingerprint}}. The '
    "selection (pending letters at this moment) is frozen in the job; the worker requeues one "
    "letter at a time at most rate_limit per second; pause, resume, cancel and progress are the "
    "job API's (/api/jobs/{job_id}).",
    operation_id="requeueDeadLettersBulk",
)
async def requeue_bulk(
    request: HttpRequest, payload: BulkRequeueIn | None = None
) -> Status[dict[str, Any]]:
    ids, spec = _ids_or_filter(payload)
    assert payload is not None  # _ids_or_filter refuses an empty body
    job = await bulk.do_start_bulk_requeue(
        user=await request.auser(),
        ids=ids,
        spec=spec,
        rate_limit=bulk.rate_limit_of(payload.rate_limit),
        expect=payload.expect,
        upto=payload.upto,
        request=request,
    )
    return Status(202, {"job": await sync_to_async(control.job_json)(job)})
