"""Site-wide pages outside any feature: logging out with a word, and the favicon.

:class:`LogoutView` is Django's, leaving a message that the login page shows
("You have logged out."); :func:`favicon` sends browsers asking for
``/favicon.ico`` to the SVG icon that base.html links.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.templatetags.static import static

LOGGED_OUT = "You have logged out."


class LogoutView(auth_views.LogoutView):
    """POST logs out, then the login page says so (the message outlives the session)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        was_logged_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_logged_in:
            messages.info(request, LOGGED_OUT)
        return response


@login_not_required
def favicon(request: HttpRequest) -> HttpResponse:
    """``/favicon.ico``: the SVG icon in static/ (browsers ask for it without a link)."""
    return HttpResponsePermanentRedirect(static("favicon.svg"))
