"""Exchanges (list and detail), vhosts, and publishing a message."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse

from dashboard.browse.rabbitmq import (
    BODY_ENCODINGS,
    BrokerError,
    build_outgoing_message,
    do_publish_message,
    get_exchange_detail,
    get_exchange_page,
    get_vhosts,
)
from dashboard.browse.rabbitmq.query import parse_int
from dashboard.browse.rabbitmq.views.common import (
    bad_request,
    can_write,
    cluster_context,
    render_page,
    required,
    url_with,
)
from dashboard.core.errors import status_for
from dashboard.core.params import InvalidInput

PROPERTY_FIELDS = (
    "content_type",
    "content_encoding",
    "delivery_mode",
    "priority",
    "correlation_id",
    "reply_to",
    "expiration",
    "message_id",
    "timestamp",
    "type",
    "user_id",
    "app_id",
)


async def exchange_list(request: HttpRequest, slug: str) -> HttpResponse:
    context = cluster_context(slug, "exchanges")
    vhost = request.GET.get("vhost") or None
    name = (request.GET.get("name") or "")[:255]
    try:
        number = parse_int(request.GET.get("page"), 1, name="page", low=1, high=1_000_000)
        size = parse_int(request.GET.get("page_size"), 100, name="page_size", low=1, high=500)
    except InvalidInput as exc:
        return await bad_request(request, slug, str(exc))
    page = await get_exchange_page(slug, vhost, page=number, page_size=size, name=name)

    def link(target: int) -> str:
        params = {"vhost": vhost or "", "name": name, "page": target, "page_size": size}
        return "?" + urlencode({k: v for k, v in params.items() if v not in ("", None)})

    count = page.page_count
    context.update(
        page=page,
        vhost=vhost or "",
        name=name,
        prev_link=link(number - 1) if number > 1 else None,
        next_link=link(number + 1) if count is not None and number < count else None,
        last_link=link(count) if count and page.past_end else None,
    )
    return await render_page(request, "rabbitmq/exchanges.html", context)


async def exchange_detail(request: HttpRequest, slug: str) -> HttpResponse:
    context = cluster_context(slug, "exchanges")
    params = required(request, "vhost", "name")
    if params is None:
        return await bad_request(request, slug, "an exchange needs its vhost and name")
    detail = await get_exchange_detail(slug, params["vhost"], params["name"])
    context.update(
        x=detail,
        can_write=await can_write(await request.auser()),
        publish_url=url_with(
            "rabbitmq-publish", slug, vhost=params["vhost"], exchange=params["name"]
        ),
    )
    return await render_page(request, "rabbitmq/exchange.html", context)


async def vhost_list(request: HttpRequest, slug: str) -> HttpResponse:
    context = cluster_context(slug, "vhosts")
    context["vhosts"] = await get_vhosts(slug)
    return await render_page(request, "rabbitmq/vhosts.html", context)


async def publish(request: HttpRequest, slug: str) -> HttpResponse:
    """The publish form (GET) and publishing (POST, operator role)."""
    context = cluster_context(slug, "exchanges")
    source = request.POST if request.method == "POST" else request.GET
    form: dict[str, Any] = {
        "vhost": source.get("vhost", ""),
        "exchange": source.get("exchange", ""),
        "routing_key": source.get("routing_key", ""),
        "body": source.get("body", ""),
        "body_encoding": source.get("body_encoding", "text"),
        "headers": source.get("headers", ""),
        "properties": {name: source.get(name, "") for name in PROPERTY_FIELDS},
    }
    user = await request.auser()
    context.update(
        form=form,
        body_encodings=BODY_ENCODINGS,
        can_write=await can_write(user),
        exchange_link=url_with(
            "rabbitmq-exchange", slug, vhost=form["vhost"], name=form["exchange"]
        ),
    )
    if request.method != "POST":
        return await render_page(request, "rabbitmq/publish.html", context)
    try:
        message = build_outgoing_message(
            exchange=form["exchange"],
            routing_key=form["routing_key"],
            body=form["body"],
            body_encoding=form["body_encoding"],
            headers=form["headers"],
            properties=form["properties"],
        )
        context["result"] = await do_publish_message(
            slug, form["vhost"], message, user=user, request=request
        )
    except InvalidInput as exc:
        context["error"] = str(exc)
        return await render_page(request, "rabbitmq/publish.html", context, status=400)
    except BrokerError as exc:
        # Shown on the form, so that what was typed is not lost.
        context["error"] = exc.message
        return await render_page(request, "rabbitmq/publish.html", context, status=status_for(exc))
    return await render_page(request, "rabbitmq/publish.html", context)
