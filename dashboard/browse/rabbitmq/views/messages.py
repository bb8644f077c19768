"""Peeking at a queue's messages, after the user confirmed what a peek does to the queue.

A user who may not peek at the queue (viewers on classic and quorum queues,
read-only clusters, queues with a delivery limit) gets the reason, not a form.
"""

from __future__ import annotations

import json
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from dashboard.browse.rabbitmq import (
    ConfirmationRequired,
    NotSupported,
    do_peek_messages,
    get_peek_plan,
    get_queue_summary,
    is_peek_confirmed,
    peek_data,
    peek_for_page,
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
from dashboard.core import once
from dashboard.core.params import InvalidInput

DEFAULT_COUNT = 10
PEEK = "rabbitmq.peek"
PEEK_MESSAGES = "rabbitmq.peek-messages"


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
    scope = _scope(slug, vhost, name)
    outcome = await once.recall(request, PEEK, scope, request.GET.get("result"))
    if outcome is not None:
        context.update(count=outcome["count"], error=outcome.get("error", ""))
        status = outcome.get("status", 200)
        if outcome.get("messages"):
            data = await once.recall(request, PEEK_MESSAGES, scope, outcome["messages"])
            context["peek"] = peek_for_page(data) if data is not None else None
            context["peek_gone"] = data is None
    return await render_page(request, "rabbitmq/peek.html", context, status=status)


def _scope(slug: str, vhost: str, name: str) -> str:
    return json.dumps([slug, vhost, name])


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
        idempotency_key=once.new_key(),
        peek_ttl=settings.MQB_RABBITMQ_PEEK_TTL,
    )


class _ShowNow(Exception):
    """What a peek read could not be kept for the page after the redirect: show it now."""

    def __init__(self, data: dict[str, Any], count: int) -> None:
        super().__init__("peek result not kept")
        self.data, self.count = data, count


async def _peek(request: HttpRequest, slug: str) -> HttpResponse:
    vhost, name = request.POST.get("vhost"), request.POST.get("name")
    if vhost is None or name is None:
        return await bad_request(request, slug, "a queue needs its vhost and name")
    scope = _scope(slug, vhost, name)

    async def write() -> str:
        outcome: dict[str, Any] = {"count": DEFAULT_COUNT}
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
        else:
            data = peek_data(view)
            try:
                outcome["messages"] = await once.remember(
                    request, PEEK_MESSAGES, scope, data, ttl=settings.MQB_RABBITMQ_PEEK_TTL
                )
            except once.NotKept:
                raise _ShowNow(data, outcome["count"]) from None
        token = await once.remember(request, PEEK, scope, outcome)
        return url_with("rabbitmq-peek", slug, vhost=vhost, name=name, result=token)

    try:
        # A repeated POST of the same form goes to the first one's result, peeking nothing.
        return await once.redirect_once(
            request,
            PEEK,
            write,
            busy=url_with("rabbitmq-peek", slug, vhost=vhost, name=name),
            status=303,
        )
    except _ShowNow as shown:
        # Redis refused it: shown once, here; a reload would peek again.
        context = cluster_context(slug, "queues")
        await _form_context(request, slug, vhost, name, context)
        context.update(count=shown.count, peek=peek_for_page(shown.data))
        return await render_page(request, "rabbitmq/peek.html", context)
