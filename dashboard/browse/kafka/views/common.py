"""Rendering helpers shared by the Kafka pages."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from dashboard.browse.kafka.access import kafka_config
from dashboard.core.context_processors import render_in_loop
from dashboard.core.params import InvalidInput, parse_page


async def render_page(
    request: HttpRequest,
    template: str,
    slug: str,
    context: dict[str, Any],
    *,
    status: int = 200,
    tab: str = "",
    in_thread: bool = True,
) -> HttpResponse:
    """Render a Kafka page with its cluster in the context, in a thread: a template tag
    or a context processor may read the database. ``in_thread=False`` renders in the
    event loop (``render_in_loop``: when the context processors read nothing either),
    for pages whose templates read nothing from the database (the loop refuses database
    access, so a test of the page catches one that does)."""
    config = kafka_config(slug)
    full = {
        "cluster": config,
        "slug": slug,
        "tab": tab,
        # Link prefixes, so long lists need no reverse() per row.
        "topic_base": reverse("kafka-topics", args=[slug]),
        "group_base": reverse("kafka-groups", args=[slug]),
        **context,
    }
    if not in_thread:
        return await render_in_loop(request, template, full, status=status)
    return await sync_to_async(render)(request, template, full, status=status)


def flag(value: str | None) -> bool:
    return (value or "").lower() in ("1", "true", "on", "yes")


def page_number(request: HttpRequest) -> int:
    """The ``page`` parameter; a bad one is a 400 (``dashboard.core.errors``)."""
    return parse_page(request.GET.get("page"), error=InvalidInput)
