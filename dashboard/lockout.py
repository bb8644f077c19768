"""The page a locked-out login gets (django-axes calls this instead of its plain text)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


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
