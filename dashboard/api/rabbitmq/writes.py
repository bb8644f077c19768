"""Message endpoints: peek (with confirmation), the peeked bodies, publish, purge."""

from __future__ import annotations

import base64
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse

from dashboard.api.rabbitmq.serialize import plain, queue_params
from dashboard.browse.rabbitmq import (
    MessageView,
    PeekRefused,
    PeekView,
    build_outgoing_message,
    do_peek_messages,
    do_publish_message,
    do_purge_queue,
    get_peeked_body,
    get_rabbitmq_config,
)
from dashboard.core.api import api, error, json_body
from dashboard.core.params import InvalidInput


def _message(slug: str, view: PeekView, item: MessageView) -> dict[str, Any]:
    message, decoded = item.message, item.decoded
    download = None
    if view.token is not None:
        download = reverse("api-rabbitmq-peeked-body", args=[slug, view.token, message.position])
    small = item.size <= view.display_limit
    return {
        "position": message.position,
        "size": item.size,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "redelivered": message.redelivered,
        "properties": plain(message.properties),
        "headers": plain(message.headers, amqp=True),
        "header_rows": plain(item.headers),
        "x_death": plain(item.deaths),
        "decoded": {
            "format": decoded.format,
            "text": decoded.text,
            "truncated": decoded.truncated,
            "note": decoded.note,
            "celery": plain(decoded.celery),
        },
        "body_base64": base64.b64encode(message.body).decode("ascii") if small else None,
        "download_url": download,
    }


@api(("POST",))
async def peek(request: HttpRequest, slug: str) -> JsonResponse:
    vhost, name = queue_params(request)
    body = json_body(request)
    count = body.get("count", 10)
    if not isinstance(count, int) or isinstance(count, bool):
        raise InvalidInput("count must be a whole number")
    confirm = body.get("confirm", False)
    if not isinstance(confirm, bool):  # null or "yes" is not a confirmation
        raise InvalidInput("confirm must be true or false")
    try:
        view = await do_peek_messages(
            slug,
            vhost,
            name,
            count,
            user=await request.auser(),
            request=request,
            confirm=confirm,
        )
    except PeekRefused as exc:
        return error(
            exc.message,
            exc.code,
            409,
            delivery_limit=exc.limit.limit,
            delivery_limit_source=exc.limit.source,
        )
    result = view.result
    return JsonResponse(
        {
            "vhost": result.vhost,
            "queue": result.queue,
            "queue_type": result.queue_type,
            "requested": result.requested,
            "remaining": result.remaining,
            "destructive": result.destructive,
            "fetched_at": result.fetched_at.isoformat(),
            "display_limit": view.display_limit,
            "kept_for_download": view.token is not None,
            "download_note": view.stored.note,
            "messages": [_message(slug, view, item) for item in view.messages],
        }
    )


@api()
async def peeked_body(request: HttpRequest, slug: str, token: str, position: int) -> HttpResponse:
    """Every byte of a peeked message, for the session that peeked it."""
    get_rabbitmq_config(slug)
    found = await get_peeked_body(request, slug, token, position)
    if found is None:
        return error("no such peeked message (they are kept for a limited time)", "not_found", 404)
    body, filename = found
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in filename)
    response = HttpResponse(body, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{safe}"'
    return response


@api(("POST",))
async def publish(request: HttpRequest, slug: str) -> JsonResponse:
    body = json_body(request)
    vhost = body.get("vhost")
    if not isinstance(vhost, str):
        raise InvalidInput("vhost is required")
    properties = body.get("properties")
    if properties is None:
        properties = {}
    if not isinstance(properties, dict):
        raise InvalidInput("properties must be an object")
    message = build_outgoing_message(
        exchange=_text(body, "exchange", ""),
        routing_key=_text(body, "routing_key", ""),
        body=_text(body, "body", ""),
        body_encoding=_text(body, "body_encoding", "text"),
        headers=body.get("headers"),
        properties=properties,
    )
    result = await do_publish_message(
        slug, vhost, message, user=await request.auser(), request=request
    )
    return JsonResponse(plain(result))


def _text(body: dict[str, Any], field: str, default: str) -> str:
    """A string field of a JSON body; missing or null is ``default``, another type is 400."""
    value = body.get(field)
    if value is None:
        return default
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string")
    return value


@api(("POST",))
async def purge(request: HttpRequest, slug: str) -> JsonResponse:
    vhost, name = queue_params(request)
    body = json_body(request)
    confirm = body.get("confirm_name")
    if confirm is not None and not isinstance(confirm, str):
        raise InvalidInput("confirm_name must be a string")
    result = await do_purge_queue(
        slug,
        vhost,
        name,
        confirm_name=confirm,
        user=await request.auser(),
        request=request,
    )
    return JsonResponse(plain(result))
