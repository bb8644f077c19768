"""The dead-letter queues page: every DLQ of every cluster, and the manage / let go forms."""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.core import once
from dashboard.core.params import InvalidInput
from dashboard.core.roles import ADMIN, has_role
from dashboard.deadletters import do_manage_dlq, do_release_dlq, get_dead_letter_queues


async def dead_letter_queues(request: HttpRequest) -> HttpResponse:
    groups = await get_dead_letter_queues()
    user = await request.auser()
    context = {
        "clusters": groups,
        "can_manage": await sync_to_async(has_role)(user, ADMIN),
        "total": sum(len(g.rows) for g in groups),
    }
    # Context processors touch the database: render off the event loop.
    response: HttpResponse = await sync_to_async(render)(
        request, "deadletters/queues.html", context
    )
    return response


def _form(request: HttpRequest) -> tuple[str, str, str] | None:
    cluster, name = request.POST.get("cluster"), request.POST.get("name")
    if not cluster or not name:
        return None
    return cluster, request.POST.get("vhost", ""), name


@require_POST
@once.writes_once("deadletters.manage")
async def manage(request: HttpRequest) -> HttpResponseRedirect:
    target = _form(request)
    if target is None:
        messages.error(request, "managing a DLQ needs its cluster and name")
        return redirect("deadletters-queues")
    cluster, vhost, name = target
    changed = await do_manage_dlq(cluster, vhost, name, user=await request.auser(), request=request)
    if changed:
        messages.success(
            request,
            f"mqboard now captures {name!r}: the collector starts within one interval,"
            " and every dead letter in it moves into the database.",
        )
    else:
        messages.info(request, f"{name!r} was already managed.")
    return redirect("deadletters-queues")


@require_POST
@once.writes_once("deadletters.release")
async def release(request: HttpRequest) -> HttpResponseRedirect:
    target = _form(request)
    if target is None:
        messages.error(request, "letting a DLQ go needs its cluster and name")
        return redirect("deadletters-queues")
    cluster, vhost, name = target
    try:
        await do_release_dlq(cluster, vhost, name, user=await request.auser(), request=request)
    except InvalidInput as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Let go of {name!r}: capture stops within one interval; rows already captured stay.",
        )
    return redirect("deadletters-queues")
