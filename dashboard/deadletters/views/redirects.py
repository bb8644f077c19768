"""The redirects page: every redirect, and for admins the forms to add, enable, disable, delete.

Adding takes two steps without any script: pick the cluster, then the form asks
that cluster's kind's target fields (and a vhost where the kind has vhosts)
for "from" and for "to". A value the broker client would refuse is shown
under its field (HTTP 400); nothing is stored.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from dashboard.core import once
from dashboard.core.roles import ADMIN, has_role
from dashboard.deadletters import redirects as service


async def _render(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    # Context processors touch the database: render off the event loop.
    response: HttpResponse = await sync_to_async(render)(request, template, context, status=status)
    return response


async def redirects_page(request: HttpRequest) -> HttpResponse:
    user = await request.auser()
    context = {
        "redirects": await sync_to_async(service.get_redirects)(),
        "clusters": await sync_to_async(service.get_cluster_forms)(),
        "can_edit": await sync_to_async(has_role)(user, ADMIN),
    }
    return await _render(request, "deadletters/redirects.html", context)


def _cluster_form(slug: str) -> service.ClusterForm:
    for form in service.get_cluster_forms():
        if form.slug == slug:
            return form
    raise Http404(f"no cluster named {slug!r} with dead letters")


def _sides(request: HttpRequest, form: service.ClusterForm) -> tuple[dict[str, str], ...]:
    return tuple(
        {f.name: request.POST.get(f"{side}.{f.name}", "") for f in form.fields}
        for side in ("from", "to")
    )


async def new_redirect(request: HttpRequest) -> HttpResponse:
    """The add form of one cluster (``?cluster=``); its POST stores the redirect."""
    slug = request.POST.get("cluster") or request.GET.get("cluster") or ""
    form = await sync_to_async(_cluster_form)(slug)
    context: dict[str, Any] = {"form": form, "values": {}, "error": None}
    if request.method == "POST":
        return await _create(request, form)
    if not await sync_to_async(has_role)(await request.auser(), ADMIN):
        context["read_only"] = True
    return await _render(request, "deadletters/redirect_form.html", context)


@once.writes_once("deadletters.redirect_create")
async def _create(request: HttpRequest, form: service.ClusterForm) -> HttpResponse:
    match, target = _sides(request, form)
    try:
        row = await service.do_create_redirect(
            user=await request.auser(),
            slug=form.slug,
            vhost=request.POST.get("vhost", ""),
            match=match,
            target=target,
            note=request.POST.get("note", ""),
            enabled=request.POST.get("enabled") == "on",
            request=request,
        )
    except service.InvalidRedirect as exc:
        values = {
            f"{side}.{k}": v for side, d in (("from", match), ("to", target)) for k, v in d.items()
        }
        values.update(vhost=request.POST.get("vhost", ""), note=request.POST.get("note", ""))
        context = {"form": form, "values": values, "error": exc}
        return await _render(request, "deadletters/redirect_form.html", context, status=400)
    messages.success(request, f"Redirect #{row.id} added: {row.from_text} → {row.to_text}.")
    return redirect("deadletters-redirects")


@require_POST
@once.writes_once("deadletters.redirect_update")
async def toggle(request: HttpRequest, redirect_id: int) -> HttpResponse:
    enabled = request.POST.get("enabled") == "1"
    try:
        await service.do_update_redirect(
            redirect_id, user=await request.auser(), enabled=enabled, request=request
        )
    except service.RedirectNotFound as exc:
        raise Http404(str(exc)) from exc
    state = "enabled" if enabled else "disabled"
    messages.success(request, f"Redirect #{redirect_id} {state}.")
    return redirect("deadletters-redirects")


@require_POST
@once.writes_once("deadletters.redirect_delete")
async def delete(request: HttpRequest, redirect_id: int) -> HttpResponse:
    try:
        await service.do_delete_redirect(redirect_id, user=await request.auser(), request=request)
    except service.RedirectNotFound as exc:
        raise Http404(str(exc)) from exc
    messages.success(request, f"Redirect #{redirect_id} deleted.")
    return redirect("deadletters-redirects")
