"""The message browser page and the download of one record's full key or value."""

from __future__ import annotations

from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from dashboard.browse.kafka import (
    BrokerError,
    NotFound,
    get_messages,
    get_record_bytes,
    get_topic_detail,
    parse_browse_query,
)
from dashboard.browse.kafka.messages import SEARCH_IN, START_CHOICES, BrowseQuery
from dashboard.browse.kafka.views.common import render_page
from dashboard.browse.kafka.views.rows_html import record_rows
from dashboard.core import once
from dashboard.core.limits import Busy, user_key
from dashboard.core.params import INT32_MAX, InvalidInput


async def messages_page(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    error = ""
    status = 200
    retry_after = 0
    query = BrowseQuery()
    result = None
    try:
        query = parse_browse_query(request.GET)
        result = await get_messages(cluster, topic, query, reader=user_key(request.user))
    except InvalidInput as exc:
        error, status = exc.message, 400
    except Busy as exc:
        error, status, retry_after = exc.message, 429, exc.retry_after
    if result:
        partitions = list(result.page.partitions)
        ticked = set(query.partitions)
    else:
        # The form keeps its partition checkboxes, and what was ticked, after an error.
        partitions = await _partitions(cluster, topic)
        ticked = {int(p) for p in request.GET.getlist("partition") if _is_partition(p)}
    context = {
        "topic_name": topic,
        "query": query,
        "result": result,
        "error": error,
        "partition_choices": [(p, p in ticked) for p in partitions],
        "produced": await once.recall(
            request, "produce", f"{cluster}/{topic}", request.GET.get("done")
        ),
        "start_choices": START_CHOICES,
        "search_in": SEARCH_IN,
        "time_zone": settings.TIME_ZONE,
        "timestamp_value": query.timestamp.isoformat() if query.timestamp else "",
        "next_url": _link(query, result.next_cursor) if result else "",
        "prev_url": _link(query, result.prev_cursor) if result and result.prev_cursor else "",
        "record_rows": record_rows(
            result.records if result else (),
            reverse("kafka-record-download", args=[cluster, topic, 0, 0, "key"]).removesuffix(
                "0/0/key"
            ),
        ),
    }
    # The rows are HTML already (rows_html) and the template reads no database row:
    # rendered in the event loop, without a trip to a thread.
    response = await render_page(
        request,
        "kafka/messages.html",
        cluster,
        context,
        status=status,
        tab="topics",
        in_thread=False,
    )
    if retry_after:
        response["Retry-After"] = str(retry_after)
    return response


def _is_partition(raw: str) -> bool:
    return raw.isascii() and raw.isdigit() and len(raw) <= len(str(INT32_MAX))


async def _partitions(cluster: str, topic: str) -> list[int]:
    """The topic's partition numbers; none if it cannot be read (the form then asks for one)."""
    try:
        detail = await get_topic_detail(cluster, topic)
    except BrokerError:
        return []
    return [p.partition for p in detail.partitions]


def _link(query: BrowseQuery, cursor: tuple[tuple[int, int], ...]) -> str:
    return "?" + urlencode(query.params(start="cursor", cursor=cursor))


async def download_record(
    request: HttpRequest, cluster: str, topic: str, partition: int, offset: int, part: str
) -> HttpResponse:
    try:
        data = await get_record_bytes(
            cluster, topic, partition, offset, part, reader=user_key(request.user)
        )
    except InvalidInput as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    except Busy as exc:
        busy = HttpResponse(exc.message, status=429, content_type="text/plain; charset=utf-8")
        busy["Retry-After"] = str(exc.retry_after)
        return busy
    if data is None:
        raise NotFound(f"the {part} of {topic} partition {partition} offset {offset} is null")
    response = HttpResponse(data, content_type="application/octet-stream")
    filename = f"{topic}-{partition}-{offset}.{part}.bin"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
