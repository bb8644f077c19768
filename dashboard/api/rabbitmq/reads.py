"""Read endpoints: queues, a queue, exchanges, an exchange, vhosts."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from dashboard.api.rabbitmq.serialize import plain, queue_params
from dashboard.browse.rabbitmq import (
    get_exchange_detail,
    get_exchange_page,
    get_queue_detail,
    get_queue_page,
    get_rabbitmq_config,
    get_vhosts,
    parse_queue_query,
)
from dashboard.browse.rabbitmq.query import parse_int
from dashboard.core.api import api


@api()
async def queues(request: HttpRequest, slug: str) -> JsonResponse:
    get_rabbitmq_config(slug)
    page = await get_queue_page(slug, parse_queue_query(request.GET))
    return JsonResponse(plain(page))


@api()
async def queue(request: HttpRequest, slug: str) -> JsonResponse:
    vhost, name = queue_params(request)
    return JsonResponse(plain(await get_queue_detail(slug, vhost, name)))


@api()
async def exchanges(request: HttpRequest, slug: str) -> JsonResponse:
    page = await get_exchange_page(
        slug,
        request.GET.get("vhost") or None,
        page=parse_int(request.GET.get("page"), 1, name="page", low=1, high=1_000_000),
        page_size=parse_int(request.GET.get("page_size"), 100, name="page_size", low=1, high=500),
        name=(request.GET.get("name") or "")[:255],
    )
    return JsonResponse(plain(page))


@api()
async def exchange(request: HttpRequest, slug: str) -> JsonResponse:
    vhost, name = queue_params(request, "exchange")
    return JsonResponse(plain(await get_exchange_detail(slug, vhost, name)))


@api()
async def vhosts(request: HttpRequest, slug: str) -> JsonResponse:
    return JsonResponse({"vhosts": plain(await get_vhosts(slug))})
