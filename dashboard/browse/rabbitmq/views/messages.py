"""Peeking at a queue's messages, after the user confirmed what a peek does to the queue.

A user who may not peek at the queue (viewers on classic and quorum queues,
read-only clusters, queues with a delivery limit) gets the reason, not a form.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from dashboard.browse.rabbitmq import (
    ConfirmationRequired,
    NotSupported,
    do_peek_messages,
    get_peek_plan,
    get_queue_summary,
    is_peek_confirmed,
    peek_refusal,
    truthy,
)
from dashboard.browse.rabbitmq.query import parse_int
from dashboard.browse.rabbitmq.views.common import (
    bad_request,
    cluster_context,
    render_page,
    url_with,
)
from dashboard.core.params import InvalidInput

DEFAULT_COUNT = 10


async def peek(request: HttpRequest, slug: str) -> HttpResponse:
    context = cluster_context(slug, "queues")
    source = request.POST if request.method == "POST" else request.GET
    vhost, name = source.get("vhost"), source.get("name")
    if vhost is None or name is None:
        return await bad_request(request, slug, "a queue needs its vhost and name")
    summary = await get_queue_summary(slug, vhost, name)
    plan = await get_peek_plan(slug, vhost, name)
    context.update(
        plan=plan,
        refusal=await peek_refusal(slug, plan, await request.auser()),
        queue=summary,
        vhost=vhost,
        name=name,
        count=DEFAULT_COUNT,
        max_count=settings.MQB_RABBITMQ_PEEK_MAX,
        confirmed=await is_peek_confirmed(request, slug, vhost, name),
        queue_link=url_with("rabbitmq-queue", slug, vhost=vhost, name=name),
    )
    if request.method != "POST":
        return await render_page(request, "rabbitmq/peek.html", context)
    status = 200
    try:
        count = parse_int(
            request.POST.get("count"), DEFAULT_COUNT, name="count", low=-1, high=1_000_000
        )
        context["count"] = count
        context["peek"] = await do_peek_messages(
            slug,
            vhost,
            name,
            count,
            user=await request.auser(),
            request=request,
            confirm=truthy(request.POST.get("confirm")),
        )
        context["confirmed"] = True
    except (InvalidInput, ConfirmationRequired) as exc:
        context["error"], status = str(exc), 400
    except NotSupported as exc:  # read-only, or a delivery limit since the form was shown
        context["error"], status = exc.message, 409
    return await render_page(request, "rabbitmq/peek.html", context, status=status)
