"""Exchanges (list and detail), vhosts, and publishing a message."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse

from dashboard.browse.rabbitmq import (
    BODY_ENCODINGS,
    BrokerError,
    PublishResult,
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
from dashboard.core import once
from dashboard.core.errors import status_for
from dashboard.core.params import InvalidInput

PUBLISH = "rabbitmq.publish"
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
    context["fetched_at"] = datetime.now(UTC)
    return await render_page(request, "rabbitmq/vhosts.html", context)


def _publish_form(source: Mapping[str, str]) -> dict[str, Any]:
    return {
        "vhost": source.get("vhost", ""),
        "exchange": source.get("exchange", ""),
        "routing_key": source.get("routing_key", ""),
        "body": source.get("body", ""),
        "body_encoding": source.get("body_encoding", "text"),
        "headers": source.get("headers", ""),
        "properties": {name: source.get(name, "") for name in PROPERTY_FIELDS},
    }


def _publish_outcome(result: PublishResult) -> dict[str, Any]:
    return {
        "size": result.size,
        "exchange": result.exchange,
        "routing_key": result.routing_key,
        "message_id": result.message_id,
    }


async def publish(request: HttpRequest, slug: str) -> HttpResponse:
    """The publish form (GET) and publishing (POST, operator role).

    A POST answers with a redirect to the form showing its outcome (kept in the
    session under ``?result=``), so Back and Reload never publish again; the
    form's idempotency key makes a double submit publish once.
    """
    context = cluster_context(slug, "exchanges")
    user = await request.auser()
    if request.method == "POST":
        return await _publish(request, slug, user)
    form = _publish_form(request.GET)
    status = 200
    outcome = await once.recall(request, PUBLISH, slug, request.GET.get("result"))
    if outcome is not None:
        form = outcome["form"]
        context.update(result=outcome.get("result"), error=outcome.get("error", ""))
        status = outcome.get("status", 200)
    context.update(
        form=form,
        body_encodings=BODY_ENCODINGS,
        can_write=await can_write(user),
        idempotency_key=once.new_key(),
        exchange_link=url_with(
            "rabbitmq-exchange", slug, vhost=form["vhost"], name=form["exchange"]
        ),
    )
    return await render_page(request, "rabbitmq/publish.html", context, status=status)


async def _publish(request: HttpRequest, slug: str, user: Any) -> HttpResponse:
    form = _publish_form(request.POST)

    def form_page(**result: str) -> str:
        return url_with(
            "rabbitmq-publish",
            slug,
            vhost=form["vhost"],
            exchange=form["exchange"],
            routing_key=form["routing_key"],
            **result,
        )

    async def write() -> str:
        outcome: dict[str, Any] = {"form": form}
        await _do_publish(request, slug, user, form, outcome)
        return form_page(result=await once.remember(request, PUBLISH, slug, outcome))

    # A repeated POST of the same form goes to the first one's result, publishing nothing.
    return await once.redirect_once(request, PUBLISH, write, busy=form_page(), status=303)


async def _do_publish(
    request: HttpRequest, slug: str, user: Any, form: dict[str, Any], outcome: dict[str, Any]
) -> None:
    try:
        message = build_outgoing_message(
            exchange=form["exchange"],
            routing_key=form["routing_key"],
            body=form["body"],
            body_encoding=form["body_encoding"],
            headers=form["headers"],
            properties=form["properties"],
        )
        result = await do_publish_message(slug, form["vhost"], message, user=user, request=request)
        outcome["result"] = _publish_outcome(result)
    except InvalidInput as exc:
        outcome.update(error=str(exc), status=400)
    except BrokerError as exc:
        # Shown on the form, so that what was typed is not lost.
        outcome.update(error=exc.message, status=status_for(exc))
