"""Cluster configuration and health: what is configured, and is it up.

``get_cluster_health`` is the live check (connect, ask, close); only the collector and
an operator's shared *check now* run it. Pages and the API read ``stored_health``:
the last check stored on each ``Cluster`` row, with its age and whether it is stale
(older than ``MQB_HEALTH_STALE_AFTER``), so no page view opens a broker connection.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any, Literal

from asgiref.sync import sync_to_async
from django.conf import settings

from brokers.base import BrokerError, ClusterConfig, ConfigError, DeadLetterQueue, Overview
from brokers.base.results import Node
from brokers.registry import make_broker
from dashboard.core.cluster_config import load_clusters
from dashboard.models import Cluster

log = logging.getLogger(__name__)


@cache
def get_cluster_configs() -> tuple[ClusterConfig, ...]:
    return load_clusters()


def get_cluster_config(slug: str) -> ClusterConfig:
    for config in get_cluster_configs():
        if config.slug == slug:
            return config
    raise ConfigError(f"no cluster named {slug!r}")


HealthSource = Literal["live", "collector", "none"]
"""``live``: checked for this answer; ``collector``: the last stored check (by the
collector or a *check now*); ``none``: never checked yet."""


@dataclass(frozen=True)
class ClusterHealth:
    slug: str
    kind: str
    name: str
    address: str
    ok: bool
    code: str
    message: str
    checked_at: datetime | None
    elapsed_ms: int
    overview: Overview | None = None
    dead_letters: tuple[DeadLetterQueue, ...] = ()
    down_since: datetime | None = None
    source: HealthSource = "live"
    age_seconds: float | None = 0.0
    """seconds since ``checked_at`` when answered; None when never checked"""
    stale: bool = False
    """older than ``MQB_HEALTH_STALE_AFTER``: the state shown may no longer hold"""

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = _jsonable(dataclasses.asdict(self))
        return data


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


async def get_cluster_health(config: ClusterConfig) -> ClusterHealth:
    """Connect, ask for the overview, close. Never raises; never exceeds the timeout."""
    started = time.monotonic()
    overview: Overview | None = None
    dead_letters: tuple[DeadLetterQueue, ...] = ()
    code, message = "ok", ""
    try:
        broker = make_broker(config)
        async with asyncio.timeout(config.timeout + 1.5):
            try:
                await broker.connect()
                overview, dead_letters = await asyncio.gather(
                    broker.overview(), broker.dead_letter_queues()
                )
            finally:
                await broker.close()
    except BrokerError as exc:
        code, message = exc.code, exc.message
    except TimeoutError:
        code = "timeout"
        message = f"no answer within {config.timeout + 1.5:g} s"
    elapsed = int((time.monotonic() - started) * 1000)
    if code != "ok":
        log.info("cluster %s is unavailable: %s", config.slug, message)
    return ClusterHealth(
        slug=config.slug,
        kind=config.kind,
        name=config.display_name,
        address=config.address,
        ok=overview is not None,
        code=code,
        message=message,
        checked_at=datetime.now(UTC),
        elapsed_ms=elapsed,
        overview=overview,
        dead_letters=dead_letters,
    )


async def get_all_cluster_health() -> list[ClusterHealth]:
    """Check every cluster at once, so one slow cluster never delays another."""
    configs = get_cluster_configs()
    results = await asyncio.gather(*(get_cluster_health(c) for c in configs))
    return [await record_health(h) for h in results]


def sync_cluster_rows() -> dict[str, Cluster]:
    """Make the Cluster table mirror the configuration; return rows by slug.

    Rows that match already are only read: one query, no write (pages, every health
    check and a collector taking over call it; on SQLite a write waits for the file).
    """
    configs = get_cluster_configs()
    found = Cluster.objects.in_bulk([c.slug for c in configs], field_name="slug")
    rows: dict[str, Cluster] = {}
    for config in configs:
        wanted = {
            "kind": config.kind,
            "name": config.display_name,
            "protected": config.protected,
            "read_only": config.read_only,
        }
        row = found.get(config.slug)
        if row is None or any(getattr(row, k) != v for k, v in wanted.items()):
            row, _ = Cluster.objects.update_or_create(slug=config.slug, defaults=wanted)
        rows[config.slug] = row
    return rows


@sync_to_async
def record_health(health: ClusterHealth) -> ClusterHealth:
    """Store the result on the Cluster row; return it with ``down_since`` filled in."""
    row = sync_cluster_rows()[health.slug]
    row.last_checked_at = health.checked_at
    row.status_code = health.code
    row.status_detail = health.message
    row.last_check_ms = health.elapsed_ms
    if health.ok and health.overview is not None:
        row.status = Cluster.Status.OK
        row.last_ok_at = health.checked_at
        row.down_since = None
        row.version = health.overview.version or ""
        row.overview = _jsonable(dataclasses.asdict(health.overview))
        row.overview["dead_letters"] = _jsonable(
            [dataclasses.asdict(d) for d in health.dead_letters]
        )
    else:
        row.status = Cluster.Status.DOWN
        row.down_since = row.down_since or health.checked_at
    row.save()
    return dataclasses.replace(health, down_since=row.down_since)


def _overview_of(data: Any) -> tuple[Overview | None, tuple[DeadLetterQueue, ...]]:
    """The Overview and DLQ depths ``record_health`` stored as JSON; None if unreadable."""
    if not isinstance(data, dict) or not data:
        return None, ()
    try:
        fields = {f.name for f in dataclasses.fields(Overview)} - {"nodes", "checked_at"}
        overview = Overview(
            nodes=tuple(
                Node(**{**n, "alarms": tuple(n.get("alarms", ()))}) for n in data.get("nodes", [])
            ),
            checked_at=datetime.fromisoformat(data["checked_at"]),
            **{k: v for k, v in data.items() if k in fields - {"replication_topics"}},
            replication_topics=tuple(data.get("replication_topics", ())),
        )
        letters = tuple(
            DeadLetterQueue(
                name=d["name"],
                depth=d.get("depth"),
                vhost=d.get("vhost"),
                checked_at=datetime.fromisoformat(d["checked_at"]) if d.get("checked_at") else None,
            )
            for d in data.get("dead_letters", [])
        )
    except (KeyError, TypeError, ValueError):
        return None, ()
    return overview, letters


def health_of_row(config: ClusterConfig, row: Cluster | None, now: datetime) -> ClusterHealth:
    """The cluster's last stored check, aged at ``now``; ``source="none"`` if never checked."""
    never = ClusterHealth(
        slug=config.slug,
        kind=config.kind,
        name=config.display_name,
        address=config.address,
        ok=False,
        code="unknown",
        message="not checked yet: the collector has not reported on this cluster",
        checked_at=None,
        elapsed_ms=0,
        source="none",
        age_seconds=None,
        stale=True,
    )
    if row is None or row.last_checked_at is None:
        return never
    ok = row.status == Cluster.Status.OK
    overview, letters = _overview_of(row.overview) if ok else (None, ())
    age = max(0.0, (now - row.last_checked_at).total_seconds())
    return dataclasses.replace(
        never,
        ok=ok and overview is not None,
        code=row.status_code or ("ok" if ok else "unknown"),
        message=row.status_detail,
        checked_at=row.last_checked_at,
        elapsed_ms=row.last_check_ms,
        overview=overview,
        dead_letters=letters,
        down_since=row.down_since,
        source="collector",
        age_seconds=round(age, 3),
        stale=age > settings.MQB_HEALTH_STALE_AFTER,
    )


def stored_health(slugs: tuple[str, ...] | None = None) -> list[ClusterHealth]:
    """Every configured cluster's last stored check (one query, no broker connection)."""
    configs = [c for c in get_cluster_configs() if slugs is None or c.slug in slugs]
    rows = {r.slug: r for r in Cluster.objects.filter(slug__in=[c.slug for c in configs])}
    now = datetime.now(UTC)
    return [health_of_row(c, rows.get(c.slug), now) for c in configs]
