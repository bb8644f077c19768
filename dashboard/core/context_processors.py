from __future__ import annotations

from django.http import HttpRequest

from dashboard.core.roles import role_of


def roles(request: HttpRequest) -> dict[str, object]:
    return {"user_role": role_of(request.user)}
