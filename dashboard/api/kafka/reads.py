"""Read endpoints of the Kafka JSON API."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard.api.kafka import writes
from dashboard.api.kafka.serialize import download_base, plain, record_json
from dashboard.browse.kafka import (
    get_group_detail,
    get_group_page,
    get_kafka_cluster,
    get_messages,
    get_record,
    get_topic_detail,
    get_topic_page,
    get_topic_readers,
    parse_browse_query,
)
from dashboard.core.api import api
from dashboard.core.limits import user_key
from dashboard.core.params import InvalidInput, parse_page


@api()
async def cluster(request: HttpRequest, cluster: str) -> HttpResponse:
    return JsonResponse(plain(await get_kafka_cluster(cluster)))


@api()
async def topics(request: HttpRequest, cluster: str) -> HttpResponse:
    page = await get_topic_page(
        cluster,
        page=parse_page(request.GET.get("page"), error=InvalidInput),
        name_filter=request.GET.get("q", "")[:249],
        include_internal=request.GET.get("internal", "") in ("1", "true"),
    )
    return JsonResponse(plain(page))


@api()
async def topic(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    return JsonResponse(plain(await get_topic_detail(cluster, topic)))


@api()
async def topic_groups(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    return JsonResponse(plain(await get_topic_readers(cluster, topic)))


@api(("GET", "POST"))
async def messages(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    """GET browses or searches; POST produces a record."""
    if request.method == "POST":
        return await writes.produce(request, cluster, topic)
    query = parse_browse_query(request.GET)
    result = await get_messages(cluster, topic, query, reader=user_key(request.user))
    page = result.page
    downloads = download_base(cluster, topic)
    return JsonResponse(
        {
            "topic": topic,
            "partitions": list(page.partitions),
            "search": {"q": query.search, "in": query.search_in} if query.search else None,
            "records": [record_json(cluster, r, downloads) for r in result.records],
            "ranges": plain(page.ranges),
            "scanned": page.scanned,
            "stopped": page.stopped or None,
            "bound_hit": result.bound_hit,
            "bounds": {
                "max_records": settings.MQB_KAFKA_SEARCH_MAX_RECORDS,
                "max_seconds": settings.MQB_KAFKA_SEARCH_MAX_SECONDS,
                "max_bytes": settings.MQB_KAFKA_BROWSE_MAX_BYTES,
            },
            "next_cursor": _cursor(result.next_cursor),
            "prev_cursor": _cursor(result.prev_cursor) if result.prev_cursor else None,
            "checked_at": page.checked_at.isoformat(),
        }
    )


def _cursor(pairs: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{p}:{o}" for p, o in pairs)


@api()
async def record(
    request: HttpRequest, cluster: str, topic: str, partition: int, offset: int
) -> HttpResponse:
    view = await get_record(cluster, topic, partition, offset, reader=user_key(request.user))
    return JsonResponse(record_json(cluster, view))


@api()
async def groups(request: HttpRequest, cluster: str) -> HttpResponse:
    page = await get_group_page(
        cluster,
        page=parse_page(request.GET.get("page"), error=InvalidInput),
        name_filter=request.GET.get("q", "")[:255],
    )
    return JsonResponse(plain(page))


@api()
async def group(request: HttpRequest, cluster: str, group: str) -> HttpResponse:
    return JsonResponse(plain(await get_group_detail(cluster, group)))
