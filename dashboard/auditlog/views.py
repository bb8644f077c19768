"""The audit log page and its CSV export, for admins only (viewers and operators: 403)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, StreamingHttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.views.decorators.http import require_GET

from dashboard.auditlog import services
from dashboard.core.roles import ADMIN, role_required
from dashboard.models import AuditEntry


@require_GET
@role_required(ADMIN)
def audit_log(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {
        "choices": services.get_filter_choices(),
        "outcomes": AuditEntry.Outcome.values,
    }
    try:
        filters = services.parse_filters(request.GET)
        page = services.get_audit_page(filters, request.GET.get("before", "").strip())
    except services.BadFilter as exc:
        context.update(filters=services.AuditFilters(), error=str(exc))
        return render(request, "auditlog/log.html", context, status=400)
    query = filters.query()
    context.update(
        page=page,
        filters=filters,
        query=urlencode(query),
        next_query=urlencode({**query, "before": page.next_cursor}) if page.next_cursor else "",
    )
    return render(request, "auditlog/log.html", context)


class _Echo:
    """A file whose write hands the line back, for csv.writer under a streaming response."""

    def write(self, value: str) -> str:
        return value


@require_GET
@role_required(ADMIN)
def audit_log_csv(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    # Reading the trail changes nothing, so the export itself writes no audit entry.
    try:
        filters = services.parse_filters(request.GET)
    except services.BadFilter as exc:
        return HttpResponseBadRequest(str(exc))
    writer = csv.writer(_Echo())
    lines: Iterator[str] = (writer.writerow(row) for row in services.csv_rows(filters))
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return StreamingHttpResponse(
        lines,
        content_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="audit-log-{stamp}.csv"'},
    )
