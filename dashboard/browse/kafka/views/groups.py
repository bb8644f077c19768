"""Consumer groups list and detail, and the offset reset form (preview, then apply)."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from dashboard.browse.kafka import (
    BrokerError,
    do_reset_offsets,
    get_group_detail,
    get_group_page,
    parse_offset_reset,
    preview_offset_reset,
)
from dashboard.browse.kafka.views.common import page_number, render_page
from dashboard.browse.kafka.views.rows_html import group_rows
from dashboard.core.errors import status_for
from dashboard.core.params import InvalidInput
from dashboard.core.roles import ADMIN, has_role

RESET_TARGETS = [
    ("earliest", "the earliest offset"),
    ("latest", "the end (latest)"),
    ("timestamp", "a time"),
    ("offset", "an offset"),
]


async def groups_page(request: HttpRequest, cluster: str) -> HttpResponse:
    page = await get_group_page(
        cluster, page=page_number(request), name_filter=request.GET.get("q", "")[:255]
    )
    rows = group_rows(
        page.groups,
        reverse("kafka-groups", args=[cluster]),
        reverse("kafka-topics", args=[cluster]),
    )
    context = {"page": page, "rows": rows}
    return await render_page(request, "kafka/groups.html", cluster, context, tab="groups")


async def group_page(request: HttpRequest, cluster: str, group: str) -> HttpResponse:
    detail = await get_group_detail(cluster, group)
    return await render_page(request, "kafka/group.html", cluster, {"group": detail}, tab="groups")


async def reset_offsets_page(request: HttpRequest, cluster: str, group: str) -> HttpResponse:
    """GET: the form. POST action=preview: the plan. POST action=apply: write it."""
    user = await request.auser()
    detail = await get_group_detail(cluster, group)
    context: dict[str, object] = {
        "group": detail,
        "is_admin": await sync_to_async(has_role)(user, ADMIN),
        "form": request.POST if request.method == "POST" else request.GET,
        "topics": sorted({p.topic for p in detail.partitions}),
        "reset_targets": RESET_TARGETS,
    }
    status = 200
    if request.method == "POST":
        try:
            reset = parse_offset_reset(request.POST)
            if request.POST.get("action") == "apply":
                context["applied"] = await do_reset_offsets(
                    cluster, group, reset, user=user, request=request
                )
                context["group"] = await get_group_detail(cluster, group)
            else:
                context["plan"] = await preview_offset_reset(
                    cluster, group, reset, user=user, request=request
                )
        except InvalidInput as exc:
            context["error"], status = exc.message, 400
        except BrokerError as exc:
            # Shown on the form (e.g. "the group has active members"), with its status.
            context["error"], status = exc.message, status_for(exc)
    return await render_page(
        request, "kafka/reset.html", cluster, context, status=status, tab="groups"
    )
