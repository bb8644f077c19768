"""Template context for every page: the user's role (for the header and the menu)."""

from __future__ import annotations

from django.http import HttpRequest

from dashboard.core.login import shown_role


def roles(request: HttpRequest) -> dict[str, object]:
    # The role computed when the user was cached saves a groups query per page;
    # the cached user is dropped whenever their groups change.
    return {"user_role": shown_role(request.user)}
