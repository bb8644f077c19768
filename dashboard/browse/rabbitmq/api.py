"""JSON API of the RabbitMQ browser, under ``/api/clusters/<slug>/rabbitmq/``.

It calls the same service functions as the HTML pages. Vhost, queue and
exchange names go in the query string, never in the path: names may hold
``/``, ``%``, spaces or anything else, and Django decodes ``%2F`` in paths
before routing. Query strings are read by the services' parsers the pages use
(``parse_queue_query``, ``parse_int``), so bounds and their messages are the
pages' own; the typed parameters document them and refuse what no parser takes.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from ninja import Query, Router
from ninja.params.functions import Body

from dashboard.browse.rabbitmq import (
    MessageView,
    PeekRefused,
    PeekView,
    build_outgoing_message,
    do_peek_messages,
    do_publish_message,
    do_purge_queue,
    get_exchange_detail,
    get_exchange_page,
    get_peeked_body,
    get_queue_detail,
    get_rabbitmq_config,
    get_vhosts,
    parse_queue_query,
)
from dashboard.browse.rabbitmq.listing import get_queue_list
from dashboard.browse.rabbitmq.query import parse_int, truthy
from dashboard.browse.rabbitmq.schemas import (
    EntityQuery,
    ExchangeDetailOut,
    ExchangeListQuery,
    ExchangePageOut,
    PeekIn,
    PeekOut,
    PeekRefusedOut,
    PublishIn,
    PublishOut,
    PurgeOut,
    QueueDetailOut,
    QueueListQuery,
    QueuePageOut,
    QueuePurgeIn,
    VhostsOut,
    plain,
)
from dashboard.core.api import ErrorOut, error, errors
from dashboard.core.encoding import encode_once

router = Router(tags=["rabbitmq"])

BASE = "/clusters/{slug:slug}/rabbitmq"
READ_ERRORS = errors(400, 404, 502, 503, 504)
WRITE_ERRORS = errors(400, 404, 409, 502, 503, 504)
# No request body at all reads as an empty object; a body of null does not.
NO_BODY: Any = Body(None)


@router.get(
    f"{BASE}/queues",
    response={200: QueuePageOut, **READ_ERRORS},
    url_name="api-rabbitmq-queues",
    summary="One page of queues, sorted and filtered (one management request)",
    operation_id="rabbitmqQueues",
)
async def queues(request: HttpRequest, slug: str, filters: Query[QueueListQuery]) -> dict[str, Any]:
    get_rabbitmq_config(slug)
    page, freshness = await get_queue_list(
        slug, parse_queue_query(request.GET), live_read=truthy(request.GET.get("live"))
    )
    return {**plain(page), **freshness.as_api()}


@router.get(
    f"{BASE}/queue",
    response={200: QueueDetailOut, **READ_ERRORS},
    url_name="api-rabbitmq-queue",
    summary="A queue: arguments, policy, dead-letter routes, consumers, bindings",
    operation_id="rabbitmqQueue",
)
async def queue(request: HttpRequest, slug: str, entity: Query[EntityQuery]) -> dict[str, Any]:
    return plain(await get_queue_detail(slug, entity.vhost, entity.name))  # type: ignore[no-any-return]


@router.get(
    f"{BASE}/exchanges",
    response={200: ExchangePageOut, **READ_ERRORS},
    url_name="api-rabbitmq-exchanges",
    summary="One page of exchanges",
    operation_id="rabbitmqExchanges",
)
async def exchanges(
    request: HttpRequest, slug: str, filters: Query[ExchangeListQuery]
) -> dict[str, Any]:
    page = await get_exchange_page(
        slug,
        filters.vhost or None,
        page=parse_int(request.GET.get("page"), 1, name="page", low=1, high=1_000_000),
        page_size=parse_int(request.GET.get("page_size"), 100, name="page_size", low=1, high=500),
        name=(filters.name or "")[:255],
    )
    return plain(page)  # type: ignore[no-any-return]


@router.get(
    f"{BASE}/exchange",
    response={200: ExchangeDetailOut, **READ_ERRORS},
    url_name="api-rabbitmq-exchange",
    summary="An exchange and its bindings in and out",
    operation_id="rabbitmqExchange",
)
async def exchange(request: HttpRequest, slug: str, entity: Query[EntityQuery]) -> dict[str, Any]:
    return plain(await get_exchange_detail(slug, entity.vhost, entity.name))  # type: ignore[no-any-return]


@router.get(
    f"{BASE}/vhosts",
    response={200: VhostsOut, **READ_ERRORS},
    url_name="api-rabbitmq-vhosts",
    summary="Vhosts with message totals, rates and queue counts",
    operation_id="rabbitmqVhosts",
)
async def vhosts(request: HttpRequest, slug: str) -> dict[str, Any]:
    return {"vhosts": plain(await get_vhosts(slug))}


# -- messages: peek (with confirmation), the peeked bodies, publish, purge -------------


def _message(slug: str, view: PeekView, item: MessageView) -> dict[str, Any]:
    message, decoded = item.message, item.decoded
    download = None
    if view.token is not None:
        download = reverse(
            "api:api-rabbitmq-peeked-body", args=[slug, view.token, message.position]
        )
    encoding, body = encode_once(message.body) if item.size <= view.display_limit else (None, None)
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
            "text": None if encoding == "utf-8" else decoded.text,
            "truncated": decoded.truncated,
            "note": decoded.note,
            "celery": plain(decoded.celery),
        },
        "body_encoding": encoding,
        "body": body,
        "download_url": download,
    }


@router.post(
    f"{BASE}/queue/peek",
    response={200: PeekOut, **WRITE_ERRORS, 409: PeekRefusedOut},
    url_name="api-rabbitmq-peek",
    summary="Read the first messages; requeues them (marks redelivered, may reorder)",
    description="Classic and quorum queues cannot be read without taking the messages: they"
    " are requeued, marked redelivered and may be reordered, so peeking at them needs the"
    " operator role (403) and a writable cluster (409). A quorum queue with a delivery limit"
    " (argument, policy, or RabbitMQ 4's default of 20) is refused with 409 delivery_limit,"
    " since a peek could dead-letter or drop a message. The first peek at a queue in a"
    " session (every peek on a protected cluster) must send confirm=true (else 409"
    " confirmation_required). Streams are read by offset without side effects, by viewers"
    " too. Bodies are kept for download within per-user and total caps; kept_for_download"
    " and download_note say.",
    operation_id="rabbitmqPeek",
)
async def peek(
    request: HttpRequest, slug: str, entity: Query[EntityQuery], body: PeekIn = NO_BODY
) -> Any:
    body = body or PeekIn.model_validate({})
    try:
        view = await do_peek_messages(
            slug,
            entity.vhost,
            entity.name,
            body.count,
            user=await request.auser(),
            request=request,
            confirm=body.confirm,
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
    return {
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


@router.get(
    f"{BASE}/peeked/{{token}}/{{int:position}}",
    response={404: ErrorOut},
    url_name="api-rabbitmq-peeked-body",
    summary="Every byte of a peeked message body (only for the session that peeked)",
    operation_id="rabbitmqPeekedBody",
    openapi_extra={
        "responses": {
            200: {
                "description": "the raw body, as an attachment",
                "content": {
                    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
                },
            }
        }
    },
)
async def peeked_body(request: HttpRequest, slug: str, token: str, position: int) -> HttpResponse:
    get_rabbitmq_config(slug)
    found = await get_peeked_body(request, slug, token, position)
    if found is None:
        return error("no such peeked message (they are kept for a limited time)", "not_found", 404)
    body, filename = found
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in filename)
    response = HttpResponse(body, content_type="application/octet-stream")
    response["Content-Disposition"] = f'attachment; filename="{safe}"'
    return response


@router.post(
    f"{BASE}/publish",
    response={200: PublishOut, **WRITE_ERRORS},
    url_name="api-rabbitmq-publish",
    summary="Publish a message (operator), with publisher confirms and mandatory",
    description="An unroutable message is an error (code unroutable), never a silent drop.",
    operation_id="rabbitmqPublish",
)
async def publish(request: HttpRequest, slug: str, message: PublishIn) -> dict[str, Any]:
    outgoing = build_outgoing_message(
        exchange=message.exchange or "",
        routing_key=message.routing_key or "",
        body=message.body or "",
        body_encoding=message.body_encoding or "text",
        headers=message.headers,
        properties=message.properties or {},
    )
    result = await do_publish_message(
        slug, message.vhost, outgoing, user=await request.auser(), request=request
    )
    return plain(result)  # type: ignore[no-any-return]


@router.post(
    f"{BASE}/queue/purge",
    response={200: PurgeOut, **WRITE_ERRORS},
    url_name="api-rabbitmq-purge",
    summary="Purge the ready messages (operator; typed name on protected clusters)",
    operation_id="rabbitmqPurge",
)
async def purge(
    request: HttpRequest, slug: str, entity: Query[EntityQuery], body: QueuePurgeIn = NO_BODY
) -> dict[str, Any]:
    result = await do_purge_queue(
        slug,
        entity.vhost,
        entity.name,
        confirm_name=body.confirm_name if body else None,
        user=await request.auser(),
        request=request,
    )
    return plain(result)  # type: ignore[no-any-return]
