"""Shared plumbing of the dead-letter services: users, roles and the audit."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from dashboard.core.audit import audit as audit
from dashboard.core.audit import audited as audited
from dashboard.core.audit import require_role as require_role

User = AbstractBaseUser | AnonymousUser
