"""JSON API of the audit trail: the page's filters and keyset pages, for admins only.

``GET /api/audit`` answers one page, newest first, and ``next``: the ``before`` cursor of
the page after it (null on the last page). Viewers and operators get 403.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from ninja import Field, Query, Router, Schema

from dashboard.auditlog import services
from dashboard.core import display
from dashboard.core.api import DateTimeText, Out, error, errors
from dashboard.core.roles import ADMIN, has_role

router = Router(tags=["audit"])


class AuditQuery(Schema):
    """The audit log page's filters as query parameters; empty means any."""

    user: str = Field("", description="the username, exactly")
    action: str = Field("", description="the action, exactly", examples=["queue.purge"])
    cluster: str = Field("", description="cluster slug")
    outcome: str = Field("", description="ok, failed or refused")
    since: str = Field("", alias="from", description="at or after; UTC unless it has an offset")
    until: str = Field("", alias="to", description="before; UTC unless it has an offset")
    before: str = Field("", description="the ``next`` of the previous page; empty: the first")


class AuditEntryOut(Out):
    id: int
    time: DateTimeText
    user: str = Field(description="the username; empty for the system")
    action: str = Field(examples=["deadletter.requeue"])
    cluster: str | None = Field(description="the cluster's slug, when the action had one")
    target: str
    outcome: str = Field(examples=["ok", "failed", "refused"])
    parameters: dict[str, Any]
    detail: str
    client_ip: str | None


class AuditPageOut(Out):
    entries: list[AuditEntryOut] = Field(description="newest first, at most 50")
    next: str | None = Field(description="the ``before`` cursor of the next (older) page")


@router.get(
    "/audit",
    response={200: AuditPageOut, **errors(400)},
    url_name="api-audit",
    summary="The audit trail, newest first, filtered (admin role)",
    operation_id="listAuditEntries",
)
def audit_entries(request: HttpRequest, query: Query[AuditQuery]) -> Any:
    if not has_role(request.user, ADMIN):
        raise PermissionDenied(f"this needs the {ADMIN} role")
    try:
        filters = services.parse_filters(query.dict(by_alias=True))
        page = services.get_audit_page(filters, query.before)
    except services.BadFilter as exc:
        return error(str(exc), "invalid", 400)
    entries = [
        {
            "id": e.pk,
            "time": display.iso(e.time),
            "user": e.username,
            "action": e.action,
            "cluster": e.cluster.slug if e.cluster else None,
            "target": e.target,
            "outcome": e.outcome,
            "parameters": e.parameters,
            "detail": e.detail,
            "client_ip": e.client_ip,
        }
        for e in (row.entry for row in page.rows)
    ]
    return {"entries": entries, "next": page.next_cursor}
