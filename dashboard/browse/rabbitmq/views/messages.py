"""Peeking at a queue's messages, after the user confirmed what a peek does to the queue.

A user who may not peek at the queue (viewers on classic and quorum queues,
read-only clusters, queues with a delivery limit) gets the reason, not a form.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from dashboard.browse.rabbitmq import (
    ConfirmationRequired,
    NotSupported,
    do_peek_messages,
    get_peek_plan,
    get_queue_summary,
    is_peek_confirmed,
    peek_refusal,
    results,
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
    """The peek form (GET) and a peek (POST): a POST answers with a redirect to the form
    showing what it read (kept under ``?result=``), so Back and Reload never peek again."""
    if request.method == "POST":
        return await _peek(request, slug)
    context = cluster_context(slug, "queues")
    vhost, name = request.GET.get("vhost"), request.GET.get("name")
    if vhost is None or name is None:
        return await bad_request(request, slug, "a queue needs its vhost and name")
    await _form_context(request, slug, vhost, name, context)
    status = 200
    token = request.GET.get("result")
    outcome = await results.load(request, "peek", token)
    if outcome is not None and token and (outcome["vhost"], outcome["name"]) == (vhost, name):
        context.update(count=outcome["count"], error=outcome.get("error", ""))
        status = outcome.get("status", 200)
        if outcome.get("read"):
            html = await results.load_html(token)
            context["peek_html"] = mark_safe(html) if html is not None else None  # noqa: S308
            context["peek_gone"] = html is None
    return await render_page(request, "rabbitmq/peek.html", context, status=status)


async def _form_context(
    request: HttpRequest, slug: str, vhost: str, name: str, context: dict[str, Any]
) -> None:
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
        idempotency_key=results.new_key(),
        peek_ttl=settings.MQB_RABBITMQ_PEEK_TTL,
    )


async def _peek(request: HttpRequest, slug: str) -> HttpResponse:
    vhost, name = request.POST.get("vhost"), request.POST.get("name")
    if vhost is None or name is None:
        return await bad_request(request, slug, "a queue needs its vhost and name")
    key = request.POST.get("idempotency_key", "")[:64]

    def result_page(token: str) -> HttpResponseRedirect:
        url = url_with("rabbitmq-peek", slug, vhost=vhost, name=name, result=token)
        return HttpResponseRedirect(url, status=303)

    earlier = await results.claim(request, "peek", key)
    if earlier is not None:
        return result_page(earlier)  # a double submit: the first one peeked
    async with results.claimed(request, "peek", key):
        outcome: dict[str, Any] = {"vhost": vhost, "name": name, "count": DEFAULT_COUNT}
        view = None
        try:
            count = parse_int(
                request.POST.get("count"), DEFAULT_COUNT, name="count", low=-1, high=1_000_000
            )
            outcome["count"] = count
            view = await do_peek_messages(
                slug,
                vhost,
                name,
                count,
                user=await request.auser(),
                request=request,
                confirm=truthy(request.POST.get("confirm")),
            )
        except (InvalidInput, ConfirmationRequired) as exc:
            outcome.update(error=str(exc), status=400)
        except NotSupported as exc:  # read-only, or a delivery limit since the form was shown
            outcome.update(error=exc.message, status=409)
        outcome["read"] = view is not None
        token = await results.save(request, "peek", outcome)
        if view is not None:
            html = await sync_to_async(render_to_string)(
                "rabbitmq/_peek_result.html", {"peek": view, "slug": slug}, request
            )
            if not await results.keep_html(token, html):
                # Redis refused it: shown once, here; a reload would peek again.
                context = cluster_context(slug, "queues")
                await _form_context(request, slug, vhost, name, context)
                context.update(count=outcome["count"], peek_html=mark_safe(html))  # noqa: S308
                return await render_page(request, "rabbitmq/peek.html", context)
        await results.settle(request, "peek", key, token)
    return result_page(token)
