"""Plumbing shared by the RabbitMQ pages."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from dashboard.browse.rabbitmq import get_rabbitmq_config
from dashboard.core import display
from dashboard.core.roles import OPERATOR, has_role

# The cluster's marks in the header of every RabbitMQ page.
display.register("protected", "Protected", "warn")
display.register("read_only", "Read-only", "muted")


async def render_page(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    # Context processors touch the database: render off the event loop.
    response: HttpResponse = await sync_to_async(render)(request, template, context, status=status)
    return response


def cluster_context(slug: str, tab: str) -> dict[str, Any]:
    """What every RabbitMQ page shows about its cluster (raises ConfigError/NotFound)."""
    config = get_rabbitmq_config(slug)
    return {"cluster": config, "slug": slug, "tab": tab}


async def can_write(user: AbstractBaseUser | AnonymousUser) -> bool:
    result: bool = await sync_to_async(has_role)(user, OPERATOR)
    return result


async def bad_request(request: HttpRequest, slug: str, message: str) -> HttpResponse:
    context = {**cluster_context(slug, ""), "message": message}
    return await render_page(request, "rabbitmq/bad_request.html", context, status=400)


def url_with(url_name: str, slug: str, /, **params: str) -> str:
    """A page URL with vhost/queue/exchange names safely in the query string."""
    query = urlencode({k: v for k, v in params.items() if v is not None})
    path = reverse(url_name, args=[slug])
    return f"{path}?{query}" if query else path


def required(request: HttpRequest, *names: str) -> dict[str, str] | None:
    """The named query parameters, or None if one is missing (``name`` may be empty)."""
    values = {}
    for name in names:
        value = request.GET.get(name)
        if value is None:
            return None
        values[name] = value
    return values
