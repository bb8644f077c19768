"""Logging in: every view needs a login, and a locked-out login gets the site's own page.

:class:`LoginRequiredMiddleware` answers the JSON API with 401 in the
documented error shape instead of redirecting to the login page.
:func:`lockout_response` is what django-axes calls (``AXES_LOCKOUT_CALLABLE``)
instead of answering with its plain text.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render

from dashboard.core.api import error


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every view needs a login; the JSON API answers 401 instead of redirecting."""

    def handle_no_permission(  # type: ignore[override]
        self, request: HttpRequest, view_func: Callable[..., Any]
    ) -> HttpResponseRedirect | JsonResponse:
        if request.path.startswith("/api/"):
            return error("authentication required", "unauthenticated", 401)
        return super().handle_no_permission(request, view_func)


def lockout_response(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """429 with the site's own page; the username comes from the refused form."""
    # axes passes (response, credentials) or only credentials depending on the
    # sync or async path; the form is what names the user either way.
    username = request.POST.get(str(getattr(settings, "AXES_USERNAME_FORM_FIELD", "username")), "")
    cooloff = settings.AXES_COOLOFF_TIME
    context = {
        "username": username,
        "failure_limit": settings.AXES_FAILURE_LIMIT,
        "cooloff_minutes": round(cooloff.total_seconds() / 60) if cooloff else None,
    }
    return render(request, "registration/locked_out.html", context, status=429)
