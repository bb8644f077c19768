"""Consumer groups list and detail, and the offset reset form (preview, then apply)."""

from __future__ import annotations

from dataclasses import asdict
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from brokers.kafka.errors import GroupNotEmpty
from dashboard.browse.kafka import (
    BrokerError,
    OffsetReset,
    do_reset_offsets,
    get_group_detail,
    get_group_list,
    parse_offset_reset,
    preview_offset_reset,
)
from dashboard.browse.kafka.access import User
from dashboard.browse.kafka.views.common import flag, page_number, render_page
from dashboard.browse.kafka.views.rows_html import group_rows, state_code
from dashboard.browse.kafka.views.topics import list_links
from dashboard.core import once
from dashboard.core.errors import status_for
from dashboard.core.params import InvalidInput
from dashboard.core.roles import ADMIN, has_role

RESET_FIELDS = ("topic", "partition", "to", "timestamp", "offset")
RESET_TARGETS = [
    ("earliest", "the earliest offset"),
    ("latest", "the end (latest)"),
    ("timestamp", "a time"),
    ("offset", "an offset"),
]


async def groups_page(request: HttpRequest, cluster: str) -> HttpResponse:
    page, freshness = await get_group_list(
        cluster,
        page=page_number(request),
        name_filter=request.GET.get("q", "")[:255],
        live_read=flag(request.GET.get("live")),
    )
    rows = group_rows(
        page.groups,
        reverse("kafka-groups", args=[cluster]),
        reverse("kafka-topics", args=[cluster]),
    )
    context = {"page": page, "rows": rows, **list_links(request, freshness)}
    # From the snapshot or one live read, the rows HTML already: nothing left to read.
    return await render_page(
        request, "kafka/groups.html", cluster, context, tab="groups", in_thread=False
    )


async def group_page(request: HttpRequest, cluster: str, group: str) -> HttpResponse:
    detail = await get_group_detail(cluster, group)
    is_admin = await sync_to_async(has_role)(await request.auser(), ADMIN)
    context = {"group": detail, "is_admin": is_admin, "state_code": state_code(detail.state)}
    return await render_page(request, "kafka/group.html", cluster, context, tab="groups")


async def reset_offsets_page(request: HttpRequest, cluster: str, group: str) -> HttpResponse:
    """GET: the form (admins only). POST action=preview: the plan. POST action=apply:
    write it once and redirect to a GET that shows what was written."""
    user = await request.auser()
    if request.method != "POST" and not await sync_to_async(has_role)(user, ADMIN):
        raise PermissionDenied("Resetting offsets needs the admin role.")
    detail = await get_group_detail(cluster, group)
    scope = f"{cluster}/{group}"
    context: dict[str, object] = {
        "group": detail,
        "form": request.POST if request.method == "POST" else request.GET,
        "topics": sorted({p.topic for p in detail.partitions}),
        "reset_targets": RESET_TARGETS,
        "idempotency_key": once.posted_key(request) or once.new_key(),
        "applied": await once.recall(request, "reset", scope, request.GET.get("done")),
    }
    status = 200
    if request.method == "POST":
        try:
            reset = parse_offset_reset(request.POST)
            if request.POST.get("action") == "apply":
                return await once.redirect_once(
                    request,
                    "kafka.reset",
                    lambda: _apply(request, cluster, group, reset, user),
                    busy=request.get_full_path(),
                )
            context["plan"] = await preview_offset_reset(
                cluster, group, reset, user=user, request=request
            )
            # The apply form posts exactly what was previewed.
            context["apply_fields"] = [(f, request.POST.get(f, "")) for f in RESET_FIELDS]
        except InvalidInput as exc:
            context["error"], status = exc.message, 400
        except GroupNotEmpty as exc:
            # The page already says so when the group is active: one notice, not two.
            status = status_for(exc)
            if not detail.is_active:
                context["error"] = exc.message
        except BrokerError as exc:
            context["error"], status = exc.message, status_for(exc)
    return await render_page(
        request, "kafka/reset.html", cluster, context, status=status, tab="groups"
    )


async def _apply(
    request: HttpRequest, cluster: str, group: str, reset: OffsetReset, user: User
) -> str:
    """Write the reset; the reset page's URL showing what changed."""
    plan = await do_reset_offsets(cluster, group, reset, user=user, request=request)
    changes = [asdict(c) for c in plan.changes]
    token = await once.remember(request, "reset", f"{cluster}/{group}", {"changes": changes})
    url = reverse("kafka-reset-offsets", args=[cluster, group])
    return f"{url}?{urlencode({'done': token})}"
