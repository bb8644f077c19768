"""Template context for every page: the user's role (for the header and the menu), and
:func:`render_in_loop`, for pages that may render without a thread."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from dashboard.core.login import role_is_kept, shown_role


def roles(request: HttpRequest) -> dict[str, object]:
    # The role computed when the user was cached saves a groups query per page;
    # the cached user is dropped whenever their groups change.
    return {"user_role": shown_role(request.user)}


async def render_in_loop(
    request: HttpRequest, template: str, context: dict[str, Any], status: int = 200
) -> HttpResponse:
    """``render`` in the event loop when the context processors read nothing (the role is
    kept with the cached user: :func:`roles` is the only one that may query), else in a
    thread. Only for a template whose own tags read nothing: the view gives them all they
    show (a query in the event loop fails the request with Django's
    ``SynchronousOnlyOperation``)."""
    if role_is_kept(request.user):
        return render(request, template, context, status=status)
    response: HttpResponse = await sync_to_async(render)(request, template, context, status=status)
    return response
