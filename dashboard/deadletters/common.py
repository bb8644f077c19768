"""Shared plumbing of the dead-letter services: users, roles and the audit."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from dashboard.core.audit import audit as audit
from dashboard.core.audit import require_role as require_role

User = AbstractBaseUser | AnonymousUser


def dlq_target(kind: str, vhost: str, name: str) -> str:
    if kind == "kafka":
        return f"topic {name!r}"
    return f"queue {name!r} in vhost {vhost!r}"
