"""The queue list: from the collector's latest sample (``live=1``: one management
request per page), every filter in the query string."""

from __future__ import annotations

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from dashboard.browse.rabbitmq import (
    PAGE_SIZES,
    QUEUE_SORTS,
    QUEUE_STATES,
    QUEUE_TYPES,
    QueueQuery,
    get_rabbitmq_configs,
    parse_queue_query,
    query_string,
    truthy,
)
from dashboard.browse.rabbitmq.listing import get_queue_list
from dashboard.browse.rabbitmq.views.common import bad_request, cluster_context, render_page
from dashboard.core.context_processors import render_in_loop
from dashboard.core.params import InvalidInput


async def all_queues(request: HttpRequest) -> HttpResponse:
    """The nav's RabbitMQ entry: the only cluster's queues, or a choice of clusters."""
    configs = get_rabbitmq_configs()
    if len(configs) == 1:
        return redirect(reverse("rabbitmq-queues", args=[configs[0].slug]))
    return await render_page(request, "rabbitmq/clusters.html", {"clusters": configs})


def _link(query: QueueQuery, **changes: object) -> str:
    return "?" + urlencode(query_string(query, **changes))


def sort_links(query: QueueQuery) -> dict[str, str]:
    """Each column's link: the same column flips direction, numbers start descending."""
    links = {}
    for key in QUEUE_SORTS:
        descending = not query.reverse if query.sort == key else key != "name"
        links[key] = _link(query, sort=key, reverse="1" if descending else "", page=1)
    return links


async def queue_list(request: HttpRequest, slug: str) -> HttpResponse:
    context = cluster_context(slug, "queues")
    try:
        query = parse_queue_query(request.GET)
    except InvalidInput as exc:
        return await bad_request(request, slug, str(exc))
    page, freshness = await get_queue_list(slug, query, live_read=truthy(request.GET.get("live")))
    count = page.page_count
    context.update(
        page=page,
        freshness=freshness,
        live_link=_link(query, live="1"),
        snapshot_link=_link(query),
        query=query,
        sort_links=sort_links(query),
        prev_link=_link(query, page=query.page - 1) if query.page > 1 else None,
        next_link=_link(query, page=query.page + 1) if page.has_next else None,
        last_link=_link(query, page=count) if count and page.past_end else None,
        page_sizes=PAGE_SIZES,
        queue_types=QUEUE_TYPES,
        queue_states=QUEUE_STATES,
        queue_url=reverse("rabbitmq-queue", args=[slug]),
        dlx_choice={True: "yes", False: "no"}.get(query.has_dlx, ""),  # type: ignore[arg-type]
    )
    # From the snapshot or one live read, with nothing left to read: no thread to render.
    return await render_in_loop(request, "rabbitmq/queues.html", context)
