from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponseRedirect, JsonResponse


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every view needs a login; the JSON API answers 401 instead of redirecting."""

    def handle_no_permission(  # type: ignore[override]
        self, request: HttpRequest, view_func: Callable[..., Any]
    ) -> HttpResponseRedirect | JsonResponse:
        if request.path.startswith("/api/"):
            return JsonResponse(
                {"error": "authentication required", "code": "unauthenticated"}, status=401
            )
        return super().handle_no_permission(request, view_func)
