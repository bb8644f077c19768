"""Write endpoints of the Kafka JSON API (session login + X-CSRFToken header)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from dashboard.api.kafka.serialize import plain
from dashboard.browse.kafka import (
    do_produce,
    do_purge_topic,
    do_reset_offsets,
    parse_offset_reset,
    parse_produce_json,
    preview_offset_reset,
)
from dashboard.browse.kafka.writes import json_partition
from dashboard.core.api import api, json_body


async def produce(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    """POST .../messages (routed by ``reads.messages``). Operator role."""
    record = parse_produce_json(json_body(request))
    user = await request.auser()
    produced = await do_produce(cluster, topic, record, user=user, request=request)
    return JsonResponse(plain(produced), status=201)


@api(("POST",))
async def purge(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    """Admin role; ``confirm`` (the topic name) on protected clusters."""
    data = json_body(request)
    result = await do_purge_topic(
        cluster,
        topic,
        partition=json_partition(data.get("partition")),
        confirm=str(data.get("confirm") or ""),
        user=await request.auser(),
        request=request,
    )
    return JsonResponse(plain(result))


@api(("POST",))
async def reset_offsets(request: HttpRequest, cluster: str, group: str) -> HttpResponse:
    """Admin role. ``apply: false`` (default) previews; ``apply: true`` writes."""
    data = json_body(request)
    params = {k: "" if v is None else str(v) for k, v in data.items()}
    reset = parse_offset_reset(params)
    user = await request.auser()
    if data.get("apply") is True:
        plan = await do_reset_offsets(cluster, group, reset, user=user, request=request)
    else:
        plan = await preview_offset_reset(cluster, group, reset, user=user, request=request)
    return JsonResponse(plain(plan))
