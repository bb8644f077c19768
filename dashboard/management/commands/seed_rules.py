"""Add a retry policy and a redirect from the command line, as a named admin (audited).

``make demo`` uses it so that the demo shows both from the start: a retry rule
in dry-run mode on the demo's DLQ (it records what it would do, sends nothing)
and a redirect of one of the demo's origins. The same services as the pages
(``do_create_policy``, ``do_create_redirect``), so the role check, the name
checks and the audit entries are the same as a click's.

It is idempotent: a policy whose name exists, and a redirect of the same
cluster, vhost and match, are left as they are (and not audited again).

    manage.py seed_rules --as demo-admin --cluster local-rabbitmq --vhost / \\
        --policy "Retry later" --policy-dlq "dlq" \\
        --redirect-from exchange=events,routing_key=user.deleted \\
        --redirect-to routing_key=user.removed --redirect-note "renamed"
"""

from __future__ import annotations

import asyncio
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from brokers.base import BrokerError
from brokers.registry import kind_of
from dashboard.core import clusters
from dashboard.core.connections import close_all
from dashboard.core.params import InvalidInput
from dashboard.deadletters.policies.rules import RuleInput, do_create_policy
from dashboard.deadletters.redirects import do_create_redirect
from dashboard.models import OriginRedirect, RetryPolicy


def fields_of(text: str) -> dict[str, str]:
    """``"exchange=x,routing_key=y"`` as a dict (CommandError when a part has no ``=``)."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise CommandError(f"{part!r}: write field=value")
        out[name.strip()] = value.strip()
    return out


class Command(BaseCommand):
    help = "Add a dry-run retry policy and a redirect (each only once), as an admin user."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--as", dest="username", required=True, help="an existing user with the admin role"
        )
        parser.add_argument("--cluster", required=True, help="cluster slug")
        parser.add_argument("--vhost", default="/", help="RabbitMQ vhost (default /)")
        parser.add_argument("--policy", default="", help="the retry policy's name")
        parser.add_argument("--policy-dlq", default="", help="glob of the DLQs it matches")
        parser.add_argument("--redirect-from", default="", help="field=value,... of the origin")
        parser.add_argument("--redirect-to", default="", help="field=value,... of the target")
        parser.add_argument("--redirect-note", default="")

    def handle(self, *args: Any, **o: Any) -> None:
        user = get_user_model().objects.filter(username=o["username"]).first()
        if user is None:
            raise CommandError(f"no user {o['username']!r}: create it with ensure_user")
        slug = o["cluster"]
        try:
            config = clusters.get_cluster_config(slug)
        except BrokerError as exc:  # an unknown slug
            raise CommandError(exc.message) from None
        vhost = o["vhost"] if kind_of(config).has_vhosts else ""
        try:
            if o["policy"]:
                self.policy(user, slug, o["policy"], o["policy_dlq"])
            if o["redirect_from"] or o["redirect_to"]:
                match, target = fields_of(o["redirect_from"]), fields_of(o["redirect_to"])
                asyncio.run(self.redirect(user, slug, vhost, match, target, o["redirect_note"]))
        except PermissionDenied:
            raise CommandError(f"{user.username} is not an admin") from None
        except InvalidInput as exc:
            raise CommandError(str(exc)) from None

    def policy(self, user: Any, slug: str, name: str, dlq: str) -> None:
        if RetryPolicy.objects.filter(name=name).exists():
            self.stdout.write(f"retry policy {name!r}: already there")
            return
        data = RuleInput(
            name=name,
            cluster=slug,
            match_dlq=dlq,
            action=RetryPolicy.Action.RETRY.value,
            max_attempts=3,
            delay_seconds=30.0,
            factor=2.0,
            cap_seconds=600.0,
            jitter=0.1,
            enabled=True,
            dry_run=True,
        )
        policy = do_create_policy(user=user, data=data)
        self.stdout.write(f"retry policy #{policy.pk} {name!r}: added, in dry-run mode")

    async def redirect(
        self,
        user: Any,
        slug: str,
        vhost: str,
        match: dict[str, str],
        target: dict[str, str],
        note: str,
    ) -> None:
        try:
            rows = OriginRedirect.objects.filter(cluster__slug=slug, vhost=vhost)
            async for row in rows:
                if {k: v for k, v in row.match.items() if v} == match:
                    self.stdout.write(f"redirect #{row.pk}: already there")
                    return
            made = await do_create_redirect(
                user=user, slug=slug, vhost=vhost, match=match, target=target, note=note
            )
            self.stdout.write(f"redirect #{made.id} {made.from_text} -> {made.to_text}: added")
        finally:
            await close_all()
