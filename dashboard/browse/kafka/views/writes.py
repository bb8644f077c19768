"""Produce a record (operator) and purge a topic or partition (admin)."""

from __future__ import annotations

from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse

from dashboard.browse.kafka import (
    BrokerError,
    do_produce,
    do_purge_topic,
    get_topic_detail,
    parse_produce_form,
)
from dashboard.browse.kafka.access import parse_int
from dashboard.browse.kafka.views.common import render_page
from dashboard.core.errors import status_for
from dashboard.core.params import INT32_MAX, InvalidInput
from dashboard.core.roles import ADMIN, OPERATOR, has_role


async def produce_page(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    user = await request.auser()
    detail = await get_topic_detail(cluster, topic)
    context: dict[str, object] = {
        "topic": detail,
        "can_produce": await sync_to_async(has_role)(user, OPERATOR),
        "form": request.POST,
    }
    status = 200
    if request.method == "POST":
        try:
            record = parse_produce_form(request.POST)
            produced = await do_produce(cluster, topic, record, user=user, request=request)
        except InvalidInput as exc:
            context["error"], status = exc.message, 400
        except BrokerError as exc:
            context["error"], status = exc.message, status_for(exc)
        else:
            messages.success(
                request,
                f"Produced to partition {produced.partition} at offset {produced.offset}.",
            )
            query = urlencode(
                [
                    ("partition", produced.partition),
                    ("start", "offset"),
                    ("offset", produced.offset),
                    ("limit", 10),
                ]
            )
            url = reverse("kafka-messages", args=[cluster, topic])
            return HttpResponseRedirect(f"{url}?{query}")
    return await render_page(
        request, "kafka/produce.html", cluster, context, status=status, tab="topics"
    )


async def purge_page(request: HttpRequest, cluster: str, topic: str) -> HttpResponse:
    user = await request.auser()
    detail = await get_topic_detail(cluster, topic)
    context: dict[str, object] = {
        "topic": detail,
        "is_admin": await sync_to_async(has_role)(user, ADMIN),
        "form": request.POST,
    }
    status = 200
    if request.method == "POST":
        try:
            partition = parse_int(request.POST, "partition", high=INT32_MAX)
            context["result"] = await do_purge_topic(
                cluster,
                topic,
                partition=partition,
                confirm=request.POST.get("confirm", ""),
                user=user,
                request=request,
            )
            context["topic"] = await get_topic_detail(cluster, topic)
        except InvalidInput as exc:
            context["error"], status = exc.message, 400
        except BrokerError as exc:
            context["error"], status = exc.message, status_for(exc)
    return await render_page(
        request, "kafka/purge.html", cluster, context, status=status, tab="topics"
    )
