"""Template context for every page: the user's role (for the header and the menu)."""

from __future__ import annotations

from django.http import HttpRequest

from dashboard.core.login import ROLE_ATTRIBUTE
from dashboard.core.roles import role_of


def roles(request: HttpRequest) -> dict[str, object]:
    # The role computed when the user was cached saves a groups query per page;
    # the cached user is dropped whenever their groups change.
    user = request.user
    if user.is_authenticated and hasattr(user, ROLE_ATTRIBUTE):
        return {"user_role": getattr(user, ROLE_ATTRIBUTE)}
    return {"user_role": role_of(user)}
