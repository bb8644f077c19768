"""The collectors' fencing token, and which collector leads, for the pages.

The lease itself (a PostgreSQL advisory lock or a Redis key) is the collector's
business (``dashboard.collector.lease``); what the features need is here, below
them: :func:`check_fence`, which a collector's commits call at the end of their
transaction (the capture sinks, the alert evaluation, the metrics writer), and
:func:`get_collector_status`. Outside a collector running under a lease (tests,
the web process, ``collect --once``) the check does nothing.

Whoever takes the lease increments the token in the ``CollectorLease`` row (the
database, not Redis, so the check is in the same transaction as the write it
guards). The check reads it ``FOR SHARE`` on PostgreSQL, so a new leader's
increment waits for a commit in flight, or the commit sees the new token; SQLite
serializes writers anyway. A token that is not the newest raises
:class:`LeaseLost`: the transaction rolls back and the collector's term ends.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from dashboard.models import CollectorLease, CollectorMember

LEASE_NAME = "collector"
P = ParamSpec("P")
R = TypeVar("R")


class LeaseLost(Exception):
    """This collector is not the leader (any more): what it was about to commit is not."""


def enable(ttl: float) -> None:
    """This process is a collector under a lease: its fenced commits check the token."""
    global _fenced, _ttl
    _fenced, _ttl = True, ttl


_state_lock = threading.Lock()
_fenced = False  # this process runs under a lease: writes must carry its token
_token: int | None = None  # the token of the term this process leads, if any
_ttl = 5.0
_on_lost: Callable[[], None] | None = None


def set_token(token: int | None, on_lost: Callable[[], None] | None = None) -> None:
    global _token, _on_lost
    with _state_lock:
        _token, _on_lost = token, on_lost


def current_token() -> int | None:
    return _token


def check_fence() -> None:
    """Inside a transaction: raise :class:`LeaseLost` (and end the term) unless this process
    still leads with the newest token. Outside a collector under a lease it does nothing."""
    if not _fenced:
        return
    token = _token
    if token is None:
        raise LeaseLost("this collector does not lead")
    table = connection.ops.quote_name(CollectorLease._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT set_config('idle_in_transaction_session_timeout', %s, true)",
                [str(int(_ttl * 1000))],
            )
            cursor.execute(f"SELECT token FROM {table} WHERE name = %s FOR SHARE", [LEASE_NAME])  # noqa: S608 (a model's table)
        else:
            cursor.execute(f"SELECT token FROM {table} WHERE name = %s", [LEASE_NAME])  # noqa: S608
        row = cursor.fetchone()
    newest = row[0] if row else None
    if newest != token:
        with _state_lock:
            on_lost = _on_lost
        if on_lost is not None:
            on_lost()
        raise LeaseLost(f"token {token} is fenced off: the lease is at token {newest}")


def fenced(function: Callable[P, R]) -> Callable[P, R]:
    """``function`` and :func:`check_fence` in one transaction: committed only while leading."""

    @functools.wraps(function)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        with transaction.atomic():
            result = function(*args, **kwargs)
            check_fence()
        return result

    return run


def take_token(host: str, pid: int) -> int:
    """The next token, recorded with who took it (right after taking the lease)."""
    with transaction.atomic():
        row, _ = CollectorLease.objects.select_for_update().get_or_create(name=LEASE_NAME)
        row.token += 1
        row.host, row.pid, row.since = host[:255], pid, timezone.now()
        row.save()
    return row.token


@dataclass(frozen=True)
class CollectorStatus:
    leader_host: str | None
    leader_pid: int | None
    since: datetime | None
    token: int
    leader_seen_at: datetime | None
    """when the leader last wrote its heartbeat; None: no running collector leads"""
    standbys: int

    @property
    def leading(self) -> bool:
        return self.leader_seen_at is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "leading": self.leading,
            "host": self.leader_host,
            "pid": self.leader_pid,
            "since": self.since.isoformat() if self.since else None,
            "token": self.token,
            "seen_at": self.leader_seen_at.isoformat() if self.leader_seen_at else None,
            "standbys": self.standbys,
        }


def get_collector_status(now: datetime | None = None) -> CollectorStatus:
    now = now or timezone.now()
    recent = now - timedelta(seconds=max(10.0, 3 * settings.MQB_SAMPLE_INTERVAL))
    row = CollectorLease.objects.filter(name=LEASE_NAME).first()
    members = list(CollectorMember.objects.filter(seen_at__gte=recent))
    leader = next(
        (m for m in members if m.is_leader and row and (m.host, m.pid) == (row.host, row.pid)),
        None,
    )
    return CollectorStatus(
        leader_host=row.host if row else None,
        leader_pid=row.pid if row else None,
        since=row.since if row else None,
        token=row.token if row else 0,
        leader_seen_at=leader.seen_at if leader else None,
        standbys=sum(1 for m in members if not m.is_leader),
    )
