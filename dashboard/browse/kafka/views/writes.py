"""Produce a record (operator) and purge a topic or partition (admin).

Both forms post once and redirect (``core.once``): the page the redirect lands on
shows the result from the session, so Back and Reload never write again.
"""

from __future__ import annotations

from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.urls import reverse

from dashboard.browse.kafka import (
    BrokerError,
    do_produce,
    do_purge_topic,
    get_topic_detail,
    parse_produce_form,
)
from dashboard.browse.kafka.access import User, parse_int
from dashboard.browse.kafka.views.common import render_page
from dashboard.core import once
from dashboard.core.errors import status_for
from dashboard.core.params import INT32_MAX, InvalidInput
from dashboard.core.roles import ADMIN, OPERATOR, has_role


async def produce_page(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    user = await request.auser()
    detail = await get_topic_detail(cluster, topic)
    key = once.posted_key(request) or once.new_key()
    context: dict[str, object] = {
        "topic": detail,
        "can_produce": await sync_to_async(has_role)(user, OPERATOR),
        "form": request.POST,
        "idempotency_key": key,
    }
    status = 200
    if request.method == "POST":
        try:
            return await once.redirect_once(
                request,
                "kafka.produce",
                lambda: _produce(request, cluster, topic, user),
                busy=request.get_full_path(),
            )
        except InvalidInput as exc:
            context["error"], status = exc.message, 400
        except BrokerError as exc:
            context["error"], status = exc.message, status_for(exc)
    return await render_page(
        request, "kafka/produce.html", cluster, context, status=status, tab="topics"
    )


async def _produce(request: HttpRequest, cluster: str, topic: str, user: User) -> str:
    """Produce the posted record; the URL of the new record, showing the result."""
    record = parse_produce_form(request.POST)
    produced = await do_produce(cluster, topic, record, user=user, request=request)
    token = await once.remember(
        request,
        "produce",
        f"{cluster}/{topic}",
        {"topic": topic, "partition": produced.partition, "offset": produced.offset},
    )
    query = urlencode(
        [
            ("partition", produced.partition),
            ("start", "offset"),
            ("offset", produced.offset),
            ("limit", 10),
            ("done", token),
        ]
    )
    return f"{reverse('kafka-messages', args=[cluster, topic])}?{query}"


async def purge_page(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    user = await request.auser()
    detail = await get_topic_detail(cluster, topic)
    context: dict[str, object] = {
        "topic": detail,
        "is_admin": await sync_to_async(has_role)(user, ADMIN),
        "form": request.POST,
        "idempotency_key": once.posted_key(request) or once.new_key(),
        "result": await once.recall(
            request, "purge", f"{cluster}/{topic}", request.GET.get("done")
        ),
    }
    status = 200
    if request.method == "POST":
        try:
            return await once.redirect_once(
                request,
                "kafka.purge",
                lambda: _purge(request, cluster, topic, user),
                busy=request.get_full_path(),
            )
        except InvalidInput as exc:
            context["error"], status = exc.message, 400
        except BrokerError as exc:
            context["error"], status = exc.message, status_for(exc)
    return await render_page(
        request, "kafka/purge.html", cluster, context, status=status, tab="topics"
    )


async def _purge(request: HttpRequest, cluster: str, topic: str, user: User) -> str:
    """Purge as posted; the purge page's URL showing the result."""
    result = await do_purge_topic(
        cluster,
        topic,
        partition=parse_int(request.POST, "partition", high=INT32_MAX),
        confirm=request.POST.get("confirm", ""),
        user=user,
        request=request,
    )
    partitions = [
        {
            "partition": p.partition,
            "low_before": p.low_before,
            "high_before": p.high_before,
            "low_after": p.low_after,
            "deleted": p.deleted,
        }
        for p in result.partitions
    ]
    token = await once.remember(
        request,
        "purge",
        f"{cluster}/{topic}",
        {"deleted": result.deleted, "partitions": partitions},
    )
    return f"{reverse('kafka-purge', args=[cluster, topic])}?{urlencode({'done': token})}"
