"""Every write the dashboard makes is recorded here, and only here."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.http import HttpRequest

from dashboard.models import AuditEntry, Cluster


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    *,
    action: str,
    user: AbstractBaseUser | AnonymousUser | None,
    outcome: str = AuditEntry.Outcome.OK,
    cluster: Cluster | None = None,
    target: str = "",
    parameters: dict[str, Any] | None = None,
    detail: str = "",
    request: HttpRequest | None = None,
) -> AuditEntry:
    real_user = user if isinstance(user, User) and user.is_authenticated else None
    return AuditEntry.objects.create(
        user=real_user,
        username=real_user.get_username() if real_user is not None else "",
        action=action,
        cluster=cluster,
        target=target,
        parameters=parameters or {},
        outcome=outcome,
        detail=detail,
        client_ip=client_ip(request),
    )
