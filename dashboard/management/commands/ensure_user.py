"""Create (or reset) a login with a role; the demo and tests use it."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandError

from dashboard.core.env import envsecret
from dashboard.core.roles import ADMIN, ROLES


class Command(BaseCommand):
    help = "Create or update a user with a role (viewer, operator, admin)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=ROLES, default="viewer")
        parser.add_argument(
            "--password-env",
            default="MQB_USER_PASSWORD",
            help="environment variable (or NAME_FILE) holding the password",
        )

    def handle(self, *args: Any, username: str, role: str, password_env: str, **opts: Any) -> None:
        password = envsecret(password_env)
        if not password:
            raise CommandError(f"set {password_env} (or {password_env}_FILE) to the password")
        user, created = User.objects.get_or_create(username=username)
        user.set_password(password)
        user.is_staff = role == ADMIN
        user.save()
        user.groups.set([Group.objects.get(name=role)])
        self.stdout.write(f"{'created' if created else 'updated'} {username} ({role})")
