"""Dead-letter queues across every cluster: discovered, managed, taken over and let go."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone

from brokers.base import BrokerError, ClusterConfig, NotFound, NotSupported
from brokers.base.deadletters import (
    DeadLetters,
    DeadLetterSource,
    DiscoveredDLQ,
    Discovery,
    DiscoveryOptions,
)
from brokers.registry import kind_named, kind_of, require
from dashboard.core import clusters, display
from dashboard.core.connections import get_broker
from dashboard.core.params import InvalidInput
from dashboard.core.roles import ADMIN
from dashboard.deadletters.common import User, audit, audited, require_role
from dashboard.deadletters.links import browse_url, cluster_url, inbox_url
from dashboard.models import AuditEntry, ManagedDeadLetterQueue

# The capture state of a DLQ, as the DLQs page shows it.
display.register("managed", "Managed", display.OK)
display.register("not_managed", "Not managed", display.MUTED)


@dataclass(frozen=True)
class ManagedState:
    managed_by: str
    managed_at: datetime
    captured_count: int
    last_captured_at: datetime | None
    capture_error: str
    capture_error_at: datetime | None
    # Kafka: per partition, the offset capture committed (everything before it is captured).
    positions: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class DeadLetterQueueRow:
    """One DLQ as the dead-letter queues page shows it."""

    cluster: str
    cluster_name: str
    dlq: DiscoveredDLQ
    managed: ManagedState | None = None

    @property
    def key(self) -> str:
        return f"{self.cluster}:{self.dlq.vhost}:{self.dlq.name}"

    @property
    def inbox_url(self) -> str:
        """The inbox filtered by this DLQ."""
        return inbox_url(cluster=self.cluster, dlq=self.dlq.name)

    @property
    def capture_lag(self) -> int | None:
        """Records on the broker capture has not committed yet (Kafka: high watermark minus
        the committed offset, summed over partitions); None when unknown or not Kafka."""
        if self.managed is None or not self.dlq.ends:
            return None
        committed = dict(self.managed.positions)
        lag = 0
        for partition, end in self.dlq.ends:
            if partition in committed:
                lag += max(end - committed[partition], 0)
            elif end:
                return None  # never committed there: where it starts is not known here
        return lag

    @property
    def browse_url(self) -> str:
        """The DLQ's queue or topic page; "" when it does not exist."""
        if not self.dlq.exists:
            return ""
        return browse_url(kind_named(self.dlq.kind), self.cluster, self.dlq.vhost, self.dlq.name)


@dataclass(frozen=True)
class ClusterDeadLetterQueues:
    """One cluster's DLQs as the page shows them.

    ``has_vhosts``, ``noun``, ``scans`` and ``depth_note`` come from the
    cluster's kind and its dead-letter capability: a vhost column, "queue" or
    "topic", whether discovery read queues up to a limit, what a depth counts.
    """

    slug: str
    name: str
    kind: str
    read_only: bool
    has_vhosts: bool
    noun: str
    scans: bool
    depth_note: str
    rows: tuple[DeadLetterQueueRow, ...] = ()
    error: str = ""  # the cluster could not be asked; managed DLQs are still listed
    checked_at: datetime | None = None
    scanned: int = 0
    complete: bool = True
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def url(self) -> str:
        """The cluster's page in the browser."""
        return cluster_url(kind_named(self.kind), self.slug)

    @property
    def inbox_url(self) -> str:
        """The inbox filtered by this cluster."""
        return inbox_url(cluster=self.slug)


def kafka_configured_topics(slug: str) -> list[str]:
    """MQB_KAFKA_DLQ_TOPICS entries for this cluster: ``topic`` or ``slug:topic``."""
    topics = []
    for entry in settings.MQB_KAFKA_DLQ_TOPICS:
        owner, sep, topic = entry.rpartition(":")
        if not sep or owner == slug:
            topics.append(topic)
    return topics


def dead_letters_of(config: ClusterConfig) -> DeadLetters:
    return require(config, lambda k: k.deadletters, "dead-letter queues")


def discovery_options(config: ClusterConfig, vhost: str | None = None) -> DiscoveryOptions:
    """What to look for: ``vhost`` alone, else MQB_DLQ_DISCOVERY_VHOSTS, else every vhost."""
    vhosts: tuple[str | None, ...] = (vhost,) if vhost is not None else ()
    vhosts = vhosts or tuple(settings.MQB_DLQ_DISCOVERY_VHOSTS) or (None,)
    return DiscoveryOptions(
        vhosts=vhosts,
        scan_limit=settings.MQB_DLQ_DISCOVERY_SCAN_LIMIT,
        configured=tuple(kafka_configured_topics(config.slug)),
    )


async def discover(config: ClusterConfig, vhost: str | None = None) -> Discovery:
    """The cluster's DLQs. With vhosts: of ``vhost``, else of MQB_DLQ_DISCOVERY_VHOSTS, else all."""
    deadletters = dead_letters_of(config)
    broker = await get_broker(config.slug)
    return await deadletters.discover(broker, discovery_options(config, vhost))


@sync_to_async
def _managed_rows() -> dict[tuple[str, str, str], ManagedDeadLetterQueue]:
    rows = ManagedDeadLetterQueue.objects.filter(active=True).select_related(
        "cluster", "managed_by"
    )
    return {(m.cluster.slug, m.vhost, m.name): m for m in rows}


def _state(row: ManagedDeadLetterQueue) -> ManagedState:
    return ManagedState(
        managed_by=row.managed_by.get_username() if row.managed_by else "",
        managed_at=row.managed_at,
        captured_count=row.captured_count,
        last_captured_at=row.last_captured_at,
        capture_error=row.capture_error,
        capture_error_at=row.capture_error_at,
        positions=_positions(row.capture_position),
    )


def _positions(found: object) -> tuple[tuple[int, int], ...]:
    if not isinstance(found, dict):
        return ()
    pairs = ((str(p), o) for p, o in found.items())
    return tuple(sorted((int(p), int(o)) for p, o in pairs if p.isdigit() and isinstance(o, int)))


async def _cluster_dlqs(
    config: ClusterConfig, managed: dict[tuple[str, str, str], ManagedDeadLetterQueue]
) -> ClusterDeadLetterQueues:
    kind = kind_of(config)
    deadletters = dead_letters_of(config)
    base = ClusterDeadLetterQueues(
        slug=config.slug,
        name=config.display_name,
        kind=config.kind,
        read_only=config.read_only,
        has_vhosts=kind.has_vhosts,
        noun=deadletters.noun,
        scans=deadletters.scans,
        depth_note=deadletters.depth_note,
    )
    try:
        async with asyncio.timeout(config.timeout * 3):
            found = await discover(config)
    except BrokerError as exc:
        found, base = None, replace(base, error=exc.message)
    except TimeoutError:
        found, base = None, replace(base, error=f"no answer within {config.timeout * 3:g} s")
    rows = []
    seen = set()
    for dlq in found.dlqs if found is not None else ():
        place = (config.slug, dlq.vhost, dlq.name)
        seen.add(place)
        row = managed.get(place)
        rows.append(
            DeadLetterQueueRow(
                config.slug, config.display_name, dlq, _state(row) if row is not None else None
            )
        )
    for place, row in managed.items():
        if place[0] == config.slug and place not in seen:
            # Managed, but not found now (deleted, or the cluster is down): still listed.
            dlq = DiscoveredDLQ(
                kind=config.kind,
                name=row.name,
                vhost=row.vhost,
                depth=None,
                found_by=("managed",),
                sources=tuple(DeadLetterSource(str(s), "managed") for s in row.sources),
                exists=found is None,
            )
            rows.append(DeadLetterQueueRow(config.slug, config.display_name, dlq, _state(row)))
    if found is None:
        return replace(base, rows=tuple(rows))
    return replace(
        base,
        rows=tuple(rows),
        checked_at=found.checked_at,
        scanned=found.scanned,
        complete=found.complete,
        notes=found.notes,
    )


async def get_dead_letter_queues() -> list[ClusterDeadLetterQueues]:
    """Every DLQ of every cluster, each cluster asked at once; a down one says why."""
    managed = await _managed_rows()
    configs = [c for c in clusters.get_cluster_configs() if kind_of(c).deadletters is not None]
    return list(await asyncio.gather(*(_cluster_dlqs(c, managed) for c in configs)))


# -- manage / let go -----------------------------------------------------------------


async def _find(config: ClusterConfig, vhost: str, name: str) -> DiscoveredDLQ:
    # Dead-letter routes never leave a vhost: reading that vhost alone is enough.
    found = await discover(config, vhost if kind_of(config).has_vhosts else None)
    for dlq in found.dlqs:
        if dlq.vhost == vhost and dlq.name == name:
            return dlq
    deadletters = dead_letters_of(config)
    hint = f", and {deadletters.not_found_hint}" if deadletters.not_found_hint else ""
    raise NotFound(
        f"{deadletters.describe(vhost, name)} on {config.display_name} is not a dead-letter"
        " queue mqboard knows of (no dead-letter exchange routes to it, its name does not end"
        f" in dlq/dlt{hint})"
    )


@sync_to_async
def _take_over(
    config: ClusterConfig, dlq: DiscoveredDLQ, user: User
) -> tuple[ManagedDeadLetterQueue, bool]:
    cluster = clusters.sync_cluster_rows()[config.slug]
    row, created = ManagedDeadLetterQueue.objects.get_or_create(
        cluster=cluster, vhost=dlq.vhost, name=dlq.name
    )
    changed = created or not row.active
    row.active = True
    row.released_at = None
    row.sources = [s.name for s in dlq.sources]
    if changed:
        row.managed_by = user if getattr(user, "is_authenticated", False) else None  # type: ignore[assignment]
        row.managed_at = timezone.now()
        row.capture_error = ""
    row.save()
    return row, changed


async def do_manage_dlq(
    slug: str, vhost: str, name: str, *, user: User, request: HttpRequest | None
) -> bool:
    """Take over a DLQ: the collector starts capturing it. False if it already was managed."""
    config = clusters.get_cluster_config(slug)
    vhost = vhost if kind_of(config).has_vhosts else ""
    target = dead_letters_of(config).describe(vhost, name)
    action = "deadletters.manage"
    await require_role(user, ADMIN, action=action, slug=slug, target=target, request=request)
    if config.read_only:
        raise NotSupported(f"cluster {config.display_name!r} is read-only in mqboard")
    async with audited(
        action,
        user=user,
        slug=slug,
        target=target,
        parameters={"vhost": vhost, "name": name},
        request=request,
    ) as entry:
        dlq = await _find(config, vhost, name)
        if not dlq.exists:
            raise NotFound(f"{target} does not exist (yet) on {config.display_name}")
        if not dlq.capturable:
            raise NotSupported(
                f"{target} is a {dlq.queue_type}: acknowledging does not remove anything"
                " from it, so it cannot be captured"
            )
        _, changed = await _take_over(config, dlq, user)
        entry.parameters.update(
            depth=dlq.depth,
            sources=[s.name for s in dlq.sources],
            already_managed=not changed,
        )
    return changed


@sync_to_async
def _let_go(slug: str, vhost: str, name: str) -> bool:
    updated = ManagedDeadLetterQueue.objects.filter(
        cluster__slug=slug, vhost=vhost, name=name, active=True
    ).update(active=False, released_at=datetime.now(UTC))
    return updated > 0


async def do_release_dlq(
    slug: str, vhost: str, name: str, *, user: User, request: HttpRequest | None
) -> None:
    """Let a DLQ go: capture stops within one collector interval; captured rows stay."""
    config = clusters.get_cluster_config(slug)
    vhost = vhost if kind_of(config).has_vhosts else ""
    target = dead_letters_of(config).describe(vhost, name)
    action = "deadletters.release"
    await require_role(user, ADMIN, action=action, slug=slug, target=target, request=request)
    if not await _let_go(slug, vhost, name):
        await audit(
            action=action,
            user=user,
            slug=slug,
            target=target,
            parameters={"vhost": vhost, "name": name},
            outcome=AuditEntry.Outcome.FAILED,
            detail="not managed",
            request=request,
        )
        raise InvalidInput(f"{target} on {config.display_name} is not managed by mqboard")
    await audit(
        action=action,
        user=user,
        slug=slug,
        target=target,
        parameters={"vhost": vhost, "name": name},
        request=request,
    )
