"""Shared plumbing of the dead-letter services: users, input errors, roles and the audit."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from dashboard.core.audit import audit as audit
from dashboard.core.audit import require_role as require_role
from dashboard.core.params import InvalidParameter

User = AbstractBaseUser | AnonymousUser


class InvalidInput(InvalidParameter):
    """Input a user can fix; the message says how. Views answer 400 with it."""


def dlq_target(kind: str, vhost: str, name: str) -> str:
    if kind == "kafka":
        return f"topic {name!r}"
    return f"queue {name!r} in vhost {vhost!r}"
