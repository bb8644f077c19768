"""Dead letters and schedules in the test database, for the schedule tests (no broker)."""

from __future__ import annotations

import itertools
from typing import Any

from dashboard.models import Cluster, DeadLetter

_serial = itertools.count(1)


def cluster(slug: str = "sched-rabbit") -> Cluster:
    return Cluster.objects.get_or_create(
        slug=slug, defaults={"kind": "rabbitmq", "name": "Schedules"}
    )[0]


def letters(n: int, *, fingerprint: str = "fp-sched", **extra: Any) -> list[DeadLetter]:
    """``n`` pending letters of one group, from exchange ``orders`` / key ``new``."""
    home = cluster()
    made = []
    for _ in range(n):
        i = next(_serial)
        made.append(
            DeadLetter.objects.create(
                cluster=home,
                vhost="/",
                dlq="orders.dlq",
                capture_key=f"sched-{i}",
                origin_exchange="orders",
                origin_routing_key="new",
                reason="rejected",
                fingerprint=fingerprint,
                message_id=f"m-{i}",
                body=b'{"n": %d}' % i,
                **extra,
            )
        )
    return made
