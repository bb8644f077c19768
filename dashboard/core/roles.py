"""Roles are Django groups created by a migration: viewer < operator < admin.

Superusers are admins. A user in no group is a viewer: being able to log in
means being able to look.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied

VIEWER, OPERATOR, ADMIN = "viewer", "operator", "admin"
ROLES = (VIEWER, OPERATOR, ADMIN)
_RANK = {name: i for i, name in enumerate(ROLES)}

F = TypeVar("F", bound=Callable[..., Any])


def role_of(user: AbstractBaseUser | AnonymousUser) -> str | None:
    if not user.is_authenticated:
        return None
    if getattr(user, "is_superuser", False):
        return ADMIN
    names = set(user.groups.values_list("name", flat=True))  # type: ignore[attr-defined]
    for role in reversed(ROLES):
        if role in names:
            return role
    return VIEWER


def has_role(user: AbstractBaseUser | AnonymousUser, needed: str) -> bool:
    role = role_of(user)
    return role is not None and _RANK[role] >= _RANK[needed]


def role_required(needed: str) -> Callable[[F], F]:
    """Refuse (403) users below ``needed``; the login itself is the middleware's job."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(request: Any, *args: Any, **kwargs: Any) -> Any:
            if not has_role(request.user, needed):
                raise PermissionDenied(f"this needs the {needed} role")
            return view(request, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator
