"""Take over dead-letter queues from the command line, as a named admin (audited).

``make demo`` uses it so that the demo's own DLQs are captured from the start:
the same service as the Manage button (``do_manage_dlq``), so the role check,
the discovery check and the audit entry are the same as a click's. The user
must exist and hold the admin role; there is no request, so the audit entry
has no client IP.

``--wait`` waits up to that many seconds for a DLQ that does not exist yet (a
workload started a moment ago may not have declared it) or a cluster that does
not answer yet; the waiting is not audited, the one attempt after it is.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.core.management.base import BaseCommand, CommandError

from brokers.base import BrokerError
from brokers.registry import kind_of
from dashboard.core import clusters
from dashboard.core.connections import close_all
from dashboard.deadletters import do_manage_dlq
from dashboard.deadletters.common import User
from dashboard.deadletters.queues import discover

RETRY_PAUSE = 1.0


class Command(BaseCommand):
    help = "Manage (capture) dead-letter queues of one cluster, as an admin user."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("names", nargs="*", help="DLQ queue or topic names")
        parser.add_argument("--cluster", required=True, help="cluster slug")
        parser.add_argument("--vhost", default="/", help="RabbitMQ vhost (default /)")
        parser.add_argument(
            "--as", dest="username", required=True, help="an existing user with the admin role"
        )
        parser.add_argument(
            "--all-discovered",
            action="store_true",
            help="every DLQ discovery finds on the cluster (in --vhost on RabbitMQ)",
        )
        parser.add_argument(
            "--wait", type=float, default=0.0, help="seconds to keep retrying missing DLQs"
        )

    def handle(
        self,
        *args: Any,
        names: list[str],
        cluster: str,
        vhost: str,
        username: str,
        all_discovered: bool,
        wait: float,
        **options: Any,
    ) -> None:
        if bool(names) == all_discovered:
            raise CommandError("name the DLQs, or pass --all-discovered (not both)")
        try:
            config = clusters.get_cluster_config(cluster)
        except BrokerError as exc:  # an unknown slug
            raise CommandError(exc.message) from None
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no user {username!r}: create it with ensure_user")
        vhost = vhost if kind_of(config).has_vhosts else ""
        failures = asyncio.run(self.manage_all(cluster, vhost, names, user, wait))
        if failures:
            raise CommandError("; ".join(failures))

    async def manage_all(
        self, slug: str, vhost: str, names: list[str], user: User, wait: float
    ) -> list[str]:
        deadline = time.monotonic() + wait
        failures: list[str] = []
        seen: set[str] = set()
        try:
            if not names:
                names = await self.discovered(slug, vhost, deadline)
                # Just discovered: no need to wait for discovery to see each of them again.
                seen = set(names)
                if not names:
                    self.stdout.write(f"{slug}: no dead-letter queue found")
            for name in names:
                problem = await self.manage_one(slug, vhost, name, user, deadline, seen)
                if problem:
                    failures.append(problem)
        finally:
            await close_all()
        return failures

    async def found(self, slug: str, vhost: str) -> list[str]:
        """Names of the capturable DLQs discovery sees now ([] while the cluster is down)."""
        try:
            result = await discover(clusters.get_cluster_config(slug), vhost or None)
        except BrokerError:
            return []
        return [d.name for d in result.dlqs if d.capturable and d.vhost == vhost]

    async def discovered(self, slug: str, vhost: str, deadline: float) -> list[str]:
        while True:
            names = await self.found(slug, vhost)
            if names or time.monotonic() >= deadline:
                return names
            await asyncio.sleep(RETRY_PAUSE)

    async def manage_one(
        self,
        slug: str,
        vhost: str,
        name: str,
        user: User,
        deadline: float,
        seen: set[str] | None = None,
    ) -> str:
        where = f"{slug}:{vhost + '/' if vhost else ''}{name}"
        # Wait (unaudited) until discovery sees it; then one audited attempt, as a click makes.
        while seen is None or name not in seen:
            if name in await self.found(slug, vhost) or time.monotonic() >= deadline:
                break
            await asyncio.sleep(RETRY_PAUSE)
        try:
            changed = await do_manage_dlq(slug, vhost, name, user=user, request=None)
        except PermissionDenied as exc:
            return f"{where}: {exc}"
        except BrokerError as exc:
            return f"{where}: {exc.message}"
        self.stdout.write(f"{where}: {'managed' if changed else 'already managed'}")
        return ""
