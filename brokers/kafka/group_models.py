"""Frozen results of the Kafka consumer-group features (see ``models`` for the rest).

``lag`` None means unknown or nothing committed, never zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# -- consumer groups -------------------------------------------------------------


@dataclass(frozen=True)
class GroupSummary:
    """One row of the consumer-groups list. ``lag`` is None when nothing is committed."""

    group_id: str
    state: str
    type: str
    protocol: str
    members: int | None
    topics: tuple[str, ...]
    committed_partitions: int
    lag: int | None
    error: str = ""

    @property
    def has_commits(self) -> bool:
        return self.committed_partitions > 0


@dataclass(frozen=True)
class GroupPage:
    groups: tuple[GroupSummary, ...]
    total: int
    page: int
    per_page: int
    name_filter: str
    checked_at: datetime

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


@dataclass(frozen=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    instance_id: str | None
    assignment: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class GroupPartition:
    """``committed`` None: no commit; ``lag`` None: unknown (no commit or no end offset)."""

    topic: str
    partition: int
    committed: int | None
    end: int | None
    lag: int | None
    member_client_id: str | None


@dataclass(frozen=True)
class GroupDetail:
    group_id: str
    state: str
    type: str
    protocol: str
    coordinator: int | None
    members: tuple[GroupMember, ...]
    partitions: tuple[GroupPartition, ...]
    checked_at: datetime

    @property
    def lag(self) -> int | None:
        lags = [p.lag for p in self.partitions if p.committed is not None]
        return None if not lags or any(x is None for x in lags) else sum(x or 0 for x in lags)

    @property
    def is_active(self) -> bool:
        return bool(self.members) or self.state not in ("Empty", "Dead")


@dataclass(frozen=True)
class OffsetChange:
    topic: str
    partition: int
    current: int | None
    new: int
    low: int | None
    high: int | None
    note: str = ""


@dataclass(frozen=True)
class OffsetResetPlan:
    group_id: str
    state: str
    changes: tuple[OffsetChange, ...]
    applied: bool
    checked_at: datetime
