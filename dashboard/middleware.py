from __future__ import annotations

from django.contrib.auth.middleware import LoginRequiredMiddleware as DjangoLoginRequired
from django.http import HttpRequest, HttpResponse, JsonResponse


class LoginRequiredMiddleware(DjangoLoginRequired):
    """Every view needs a login; the JSON API answers 401 instead of redirecting."""

    def handle_no_permission(self, request: HttpRequest, view_func: object) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse(
                {"error": "authentication required", "code": "unauthenticated"}, status=401
            )
        return super().handle_no_permission(request, view_func)
