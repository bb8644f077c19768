"""JSON API of redirects: old origins mapped to new targets (:mod:`.redirects`).

Every user reads the list; admins create, update (enable, note) and delete.
``match`` and ``target`` hold the cluster kind's target fields (RabbitMQ:
``exchange``, ``routing_key``; Kafka: ``topic``); an empty ``match`` field
matches any value, an empty ``target`` field keeps the origin's. A name the
broker client would refuse is a 400 whose ``field`` names it (``from.topic``).
Every change is audited (``deadletters.redirect_*``).
"""

from __future__ import annotations

from typing import Annotated, Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, JsonResponse
from ninja import Field, Path, Router, Status
from pydantic import WithJsonSchema

from dashboard.core.api import DateTimeText, Out, error, errors
from dashboard.deadletters import redirects
from dashboard.deadletters.schemas import MAX_ID, In

router = Router(tags=["dead letters"])

ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
RedirectId = Path[Annotated[int, WithJsonSchema(ID_SCHEMA)]]


class RedirectOut(Out):
    id: int
    cluster: str = Field(description="cluster slug")
    vhost: str | None = Field(
        description="the vhost it applies to ('' every vhost); null where the kind has none"
    )
    match: dict[str, str] = Field(description="the old origin: the kind's target fields")
    target: dict[str, str] = Field(description="the new target: the kind's target fields")
    note: str
    enabled: bool
    created_by: str
    created_at: DateTimeText


class RedirectsOut(Out):
    redirects: list[RedirectOut]


class RedirectIn(In):
    cluster: str = Field(description="cluster slug")
    vhost: str = Field("", description="RabbitMQ: the vhost it applies to ('' every vhost)")
    match: dict[str, str] = Field(description="the old origin (at least one field set)")
    target: dict[str, str] = Field(description="the new target (empty fields keep the origin's)")
    note: str = ""
    enabled: bool = True


class RedirectUpdateIn(In):
    enabled: bool | None = None
    note: str | None = None


def redirect_json(row: redirects.RedirectRow) -> dict[str, Any]:
    return {
        "id": row.id,
        "cluster": row.cluster,
        "vhost": row.vhost if row.has_vhosts else None,
        "match": row.match,
        "target": row.target,
        "note": row.note,
        "enabled": row.enabled,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
    }


def _not_found(redirect_id: int) -> JsonResponse:
    return error(f"no redirect #{redirect_id}", "not_found", 404)


@router.get(
    "/deadletters/redirects",
    response=RedirectsOut,
    url_name="api-deadletters-redirects",
    summary="Every redirect: old origins whose requeues go to a new target",
    operation_id="deadLetterRedirects",
)
async def list_redirects(request: HttpRequest) -> dict[str, Any]:
    rows = await sync_to_async(redirects.get_redirects)()
    return {"redirects": [redirect_json(r) for r in rows]}


@router.post(
    "/deadletters/redirects",
    response={201: RedirectOut, **errors(400)},
    url_name="api-deadletters-redirect-create",
    summary="Add a redirect (admin)",
    description="Requeues to an origin matching `match` (by hand, bulk, scheduled, by policy) "
    "go to `target` instead; a target the user names is never redirected. Audited.",
    operation_id="createDeadLetterRedirect",
)
async def create(request: HttpRequest, payload: RedirectIn) -> Status[dict[str, Any]]:
    row = await redirects.do_create_redirect(
        user=await request.auser(),
        slug=payload.cluster,
        vhost=payload.vhost,
        match=payload.match,
        target=payload.target,
        note=payload.note,
        enabled=payload.enabled,
        request=request,
    )
    return Status(201, redirect_json(row))


@router.patch(
    "/deadletters/redirects/{redirect_id}",
    response={200: RedirectOut, **errors(400, 404)},
    url_name="api-deadletters-redirect-update",
    summary="Enable, disable or re-note a redirect (admin)",
    operation_id="updateDeadLetterRedirect",
)
async def update(request: HttpRequest, redirect_id: RedirectId, payload: RedirectUpdateIn) -> Any:
    try:
        row = await redirects.do_update_redirect(
            redirect_id,
            user=await request.auser(),
            enabled=payload.enabled,
            note=payload.note,
            request=request,
        )
    except redirects.RedirectNotFound:
        return _not_found(redirect_id)
    return redirect_json(row)


@router.delete(
    "/deadletters/redirects/{redirect_id}",
    response={204: None, **errors(400, 404)},
    url_name="api-deadletters-redirect-delete",
    summary="Delete a redirect (admin)",
    operation_id="deleteDeadLetterRedirect",
)
async def delete(request: HttpRequest, redirect_id: RedirectId) -> Any:
    try:
        await redirects.do_delete_redirect(redirect_id, user=await request.auser(), request=request)
    except redirects.RedirectNotFound:
        return _not_found(redirect_id)
    return Status(204, None)
