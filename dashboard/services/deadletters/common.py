"""Shared plumbing of the dead-letter services: users, input errors, roles and the audit."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from dashboard.models import AuditEntry, Cluster
from dashboard.roles import has_role
from dashboard.services import clusters
from dashboard.services.audit import record

User = AbstractBaseUser | AnonymousUser


class InvalidInput(ValueError):
    """Input a user can fix; the message says how. Views answer 400 with it."""


def dlq_target(kind: str, vhost: str, name: str) -> str:
    if kind == "kafka":
        return f"topic {name!r}"
    return f"queue {name!r} in vhost {vhost!r}"


@sync_to_async
def audit(
    *,
    action: str,
    user: User | None,
    slug: str,
    target: str,
    parameters: dict[str, Any],
    outcome: str = AuditEntry.Outcome.OK,
    detail: str = "",
    request: HttpRequest | None = None,
) -> AuditEntry:
    cluster = Cluster.objects.filter(slug=slug).first() or clusters.sync_cluster_rows().get(slug)
    return record(
        action=action,
        user=user,
        outcome=outcome,
        cluster=cluster,
        target=target,
        parameters=parameters,
        detail=detail,
        request=request,
    )


async def require_role(
    user: User, role: str, *, action: str, slug: str, target: str, request: HttpRequest | None
) -> None:
    """Refuse (PermissionDenied, audited) a user below ``role``."""
    if await sync_to_async(has_role)(user, role):
        return
    await audit(
        action=action,
        user=user,
        slug=slug,
        target=target,
        parameters={},
        outcome=AuditEntry.Outcome.REFUSED,
        detail=f"needs the {role} role",
        request=request,
    )
    raise PermissionDenied(f"this needs the {role} role")
