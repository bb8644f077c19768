"""Kafka cluster page, topics list and topic detail.

The topics and groups lists come from the collector's latest sample; ``live=1``
reads Kafka instead (the pages' *Refresh now*).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from dashboard.browse.kafka import (
    BrokerError,
    TopicReaders,
    get_kafka_cluster,
    get_topic_detail,
    get_topic_list,
    get_topic_readers,
    kafka_slugs,
)
from dashboard.browse.kafka.access import kafka_config
from dashboard.browse.kafka.topics import Freshness
from dashboard.browse.kafka.views.common import flag, page_number, render_page
from dashboard.browse.kafka.views.rows_html import state_code, topic_rows
from dashboard.core.roles import ADMIN, OPERATOR, has_role


def list_links(request: HttpRequest, freshness: Freshness) -> dict[str, Any]:
    """Where a list came from, and the links to read it live or from the snapshot again."""
    params = {k: v for k, v in request.GET.items() if k != "live"}
    return {
        "freshness": freshness,
        "live_link": "?" + urlencode({**params, "live": "1"}),
        "snapshot_link": "?" + urlencode(params),
    }


async def kafka_home(request: HttpRequest) -> HttpResponse:
    """The nav's "Kafka" link: the cluster page when there is one Kafka cluster, the
    list of them when there are several."""
    slugs = kafka_slugs()
    if len(slugs) == 1:
        return HttpResponseRedirect(reverse("kafka-cluster", args=[slugs[0]]))
    if not slugs:
        return await sync_to_async(render)(request, "kafka/none.html", {})
    context = {"kafka_clusters": [kafka_config(slug) for slug in slugs]}
    return await sync_to_async(render)(request, "kafka/clusters.html", context)


async def cluster_page(request: HttpRequest, cluster: str) -> HttpResponse:
    info = await get_kafka_cluster(cluster)
    return await render_page(request, "kafka/cluster.html", cluster, {"info": info}, tab="cluster")


async def topics_page(request: HttpRequest, cluster: str) -> HttpResponse:
    page, freshness = await get_topic_list(
        cluster,
        page=page_number(request),
        name_filter=request.GET.get("q", "")[:249],
        include_internal=flag(request.GET.get("internal")),
        live_read=flag(request.GET.get("live")),
    )
    rows = topic_rows(page.topics, reverse("kafka-topics", args=[cluster]))
    context = {"page": page, "rows": rows, **list_links(request, freshness)}
    # From the snapshot or one live read, the rows HTML already: nothing left to read.
    return await render_page(
        request, "kafka/topics.html", cluster, context, tab="topics", in_thread=False
    )


async def topic_page(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    detail, (readers, readers_error) = await asyncio.gather(
        get_topic_detail(cluster, topic), _readers(cluster, topic)
    )
    reader_rows = [
        (g, state_code(g.state) if g.state else "") for g in (readers.groups if readers else ())
    ]
    user = await request.auser()
    context = {
        "topic": detail,
        "can_produce": await sync_to_async(has_role)(user, OPERATOR),
        "is_admin": await sync_to_async(has_role)(user, ADMIN),
        "readers": readers,
        "reader_rows": reader_rows,
        "readers_error": readers_error,
    }
    return await render_page(request, "kafka/topic.html", cluster, context, tab="topics")


async def _readers(cluster: str, topic: str) -> tuple[TopicReaders | None, str]:
    """The groups reading the topic are a bonus: their failure does not fail the page."""
    try:
        return await get_topic_readers(cluster, topic), ""
    except BrokerError as exc:
        return None, exc.message
