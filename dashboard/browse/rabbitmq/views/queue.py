"""One queue: its detail page and the purge form behind it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from dashboard.browse.rabbitmq import do_purge_queue, get_peek_plan, get_queue_detail, peek_refusal
from dashboard.browse.rabbitmq.views.common import (
    bad_request,
    can_write,
    cluster_context,
    render_page,
    required,
    url_with,
)
from dashboard.core import once
from dashboard.core.params import InvalidInput


async def queue_detail(request: HttpRequest, slug: str) -> HttpResponse:
    context = cluster_context(slug, "queues")
    params = required(request, "vhost", "name")
    if params is None:
        return await bad_request(request, slug, "a queue needs its vhost and name")
    vhost, name = params["vhost"], params["name"]
    detail = await get_queue_detail(slug, vhost, name)
    user = await request.auser()
    context.update(
        q=detail,
        # The reason a peek would be refused stands where the button would be.
        peek_refusal=await peek_refusal(slug, await get_peek_plan(slug, vhost, name), user),
        can_write=await can_write(user),
        peek_url=url_with("rabbitmq-peek", slug, vhost=vhost, name=name),
        publish_url=url_with("rabbitmq-publish", slug, vhost=vhost, exchange="", routing_key=name),
    )
    return await render_page(request, "rabbitmq/queue.html", context)


@require_POST
@once.writes_once("rabbitmq.purge")
async def purge(request: HttpRequest, slug: str) -> HttpResponseRedirect:
    vhost, name = request.POST.get("vhost"), request.POST.get("name")
    if vhost is None or name is None:
        messages.error(request, "a purge needs the queue's vhost and name")
        return redirect(url_with("rabbitmq-queues", slug))
    back = url_with("rabbitmq-queue", slug, vhost=vhost, name=name)
    try:
        result = await do_purge_queue(
            slug,
            vhost,
            name,
            confirm_name=request.POST.get("confirm_name"),
            user=await request.auser(),
            request=request,
        )
    except InvalidInput as exc:
        messages.error(request, str(exc))
        return redirect(back)
    messages.success(
        request,
        f"Purged {result.purged} ready message(s) from {name!r}"
        f" ({result.unacked_before or 0} unacknowledged message(s) were not touched).",
    )
    return redirect(back)
