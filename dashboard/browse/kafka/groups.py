"""Kafka consumer groups: list, detail, and resetting offsets (preview, then apply).

The groups list answers from the collector's latest sample (``get_group_list``):
a page's rows are made from the sampled values of that page's groups only, once
per sample and process (``GroupIndex`` keeps the rows it made and the ids a
filter matched until the next sample replaces it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from brokers.base.metrics import FIELDS
from brokers.kafka import offsets as kafka_offsets
from brokers.kafka.errors import GroupNotEmpty
from brokers.kafka.group_models import GroupDetail, GroupPage, GroupSummary, OffsetResetPlan
from dashboard.browse.kafka.access import (
    User,
    audited,
    authorize_write,
    check_group,
    check_topic,
    get_kafka,
    parse_int,
)
from dashboard.browse.kafka.messages import parse_timestamp, timestamp_ms
from dashboard.core.params import INT32_MAX, InvalidInput
from dashboard.core.roles import ADMIN
from dashboard.metrics.snapshot_lists import Freshness, Snapshot, live, read_listing


async def get_group_page(slug: str, *, page: int = 1, name_filter: str = "") -> GroupPage:
    topics = await get_kafka(slug)
    return await topics.group_page(
        page=page,
        per_page=settings.MQB_KAFKA_PAGE_SIZE,
        name_filter=name_filter,
    )


async def get_group_detail(slug: str, group_id: str) -> GroupDetail:
    check_group(group_id)
    topics = await get_kafka(slug)
    return await topics.group_detail(group_id)


@dataclass(frozen=True)
class OffsetReset:
    """A reset request: which partitions, and to where."""

    topic: str
    partition: int | None
    to: str
    timestamp: datetime | None = None
    offset: int | None = None

    def as_audit(self) -> dict[str, Any]:
        data = asdict(self)
        data["timestamp"] = self.timestamp.isoformat() if self.timestamp else None
        return data


def parse_offset_reset(params: Any) -> OffsetReset:
    topic = str(params.get("topic") or "").strip()
    if not topic:
        raise InvalidInput("choose the topic whose offsets to reset")
    check_topic(topic)
    to = str(params.get("to") or "")
    if to not in kafka_offsets.RESET_TARGETS:
        raise InvalidInput(f"to must be one of {', '.join(kafka_offsets.RESET_TARGETS)}")
    raw_time = str(params.get("timestamp") or "")
    timestamp = parse_timestamp(raw_time) if raw_time.strip() else None
    if to == "timestamp" and timestamp is None:
        raise InvalidInput("to=timestamp needs a timestamp")
    offset = parse_int(params, "offset", low=0)
    if to == "offset" and offset is None:
        raise InvalidInput("to=offset needs an offset")
    return OffsetReset(
        topic=topic,
        partition=parse_int(params, "partition", high=INT32_MAX),
        to=to,
        timestamp=timestamp if to == "timestamp" else None,
        offset=offset if to == "offset" else None,
    )


async def _plan(slug: str, group_id: str, reset: OffsetReset, *, apply: bool) -> OffsetResetPlan:
    check_group(group_id)
    topics = await get_kafka(slug)
    return await topics.reset_offsets(
        group_id,
        topic=reset.topic,
        partition=reset.partition,
        to=reset.to,
        timestamp_ms=timestamp_ms(reset.timestamp) if reset.timestamp else None,
        offset=reset.offset,
        apply=apply,
    )


async def preview_offset_reset(
    slug: str, group_id: str, reset: OffsetReset, *, user: User, request: HttpRequest | None
) -> OffsetResetPlan:
    """The new offsets, not written. Needs the admin role like the write itself."""
    await authorize_write(
        slug=slug,
        role=ADMIN,
        action="kafka.reset_offsets.preview",
        user=user,
        target=f"group:{group_id}",
        parameters=reset.as_audit(),
        request=request,
    )
    return await _plan(slug, group_id, reset, apply=False)


async def do_reset_offsets(
    slug: str, group_id: str, reset: OffsetReset, *, user: User, request: HttpRequest | None
) -> OffsetResetPlan:
    """Recompute the plan with the same parameters and write it; audited either way."""
    parameters = reset.as_audit()
    await authorize_write(
        slug=slug,
        role=ADMIN,
        action="kafka.reset_offsets",
        user=user,
        target=f"group:{group_id}",
        parameters=parameters,
        request=request,
    )
    async with audited(
        "kafka.reset_offsets",
        user=user,
        slug=slug,
        target=f"group:{group_id}",
        parameters=parameters,
        request=request,
        refused=(GroupNotEmpty,),
    ) as entry:
        plan = await _plan(slug, group_id, reset, apply=True)
        entry.parameters["changes"] = [
            {"topic": c.topic, "partition": c.partition, "from": c.current, "to": c.new}
            for c in plan.changes
        ]
    return plan


# Filters whose matches a GroupIndex remembers (the newest ones; a sample replaces the index).
KEPT_FILTERS = 32


@dataclass
class GroupIndex:
    """Every sampled group id, sorted, with its values; rows are made only for a page,
    and kept with the ids each filter matched until the next sample replaces the index."""

    ids: list[str]
    folded: list[str]
    values: dict[str, tuple[Any, ...]]
    extras: dict[str, dict[str, Any]]
    made: dict[str, GroupSummary] = field(default_factory=dict)
    matched: dict[str, list[str]] = field(default_factory=dict)
    reading: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def build(cls, snapshot: Snapshot) -> GroupIndex:
        values = dict(snapshot.rows("group"))
        ids = sorted(values)
        return cls(ids, [g.casefold() for g in ids], values, dict(snapshot.extras("group")))

    def _matching(self, needle: str) -> list[str]:
        if not needle:
            return self.ids
        found = self.matched.get(needle)
        if found is None:
            found = [g for g, f in zip(self.ids, self.folded, strict=True) if needle in f]
            if len(self.matched) >= KEPT_FILTERS:
                self.matched.pop(next(iter(self.matched)))
            self.matched[needle] = found
        return found

    def readers_of(self, topic: str) -> list[str]:
        """The groups assigned ``topic`` or with an offset committed on it (remembered
        for the newest ``KEPT_FILTERS`` topics asked about)."""
        found = self.reading.get(topic)
        if found is None:
            found = [g for g in self.ids if topic in (self.extras.get(g) or {}).get("topics", ())]
            if len(self.reading) >= KEPT_FILTERS:
                self.reading.pop(next(iter(self.reading)))
            self.reading[topic] = found
        return found

    def page(self, page: int, per_page: int, name_filter: str, as_of: datetime) -> GroupPage:
        found = self._matching(name_filter.strip().casefold())
        page = min(max(1, page), max(1, -(-len(found) // per_page)))
        shown = found[(page - 1) * per_page : page * per_page]
        return GroupPage(
            groups=tuple(self._row(g) for g in shown),
            total=len(found),
            page=page,
            per_page=per_page,
            name_filter=name_filter,
            checked_at=as_of,
        )

    def _row(self, group_id: str) -> GroupSummary:
        row = self.made.get(group_id)
        if row is None:
            row = self.made[group_id] = self._make(group_id)
        return row

    def _make(self, group_id: str) -> GroupSummary:
        v = dict(zip(FIELDS, self.values[group_id], strict=True))
        extra = self.extras.get(group_id) or {}
        topics = extra.get("topics")
        return GroupSummary(
            group_id=group_id,
            state=str(extra.get("state") or "Unknown"),
            type=str(extra.get("type") or "unknown"),
            protocol=str(extra.get("protocol") or ""),
            members=v["consumers"],
            topics=tuple(str(t) for t in topics) if isinstance(topics, list) else (),
            committed_partitions=int(extra.get("committed") or 0),
            lag=v["lag"],
            error=str(extra.get("error") or ""),
        )


async def get_group_list(
    slug: str, *, page: int = 1, name_filter: str = "", live_read: bool = False
) -> tuple[GroupPage, Freshness]:
    """A page of groups from the collector's latest sample; live when asked, when the
    snapshot cannot answer, or when the collector read only some groups
    (``MQB_METRICS_KAFKA_MAX_GROUPS``)."""
    reason = "asked for a live read" if live_read else ""
    if not reason:
        listing = await read_listing(slug, "groups", GroupIndex.build)
        if isinstance(listing, str):
            reason = listing
        else:
            cost = listing.snapshot.status.get("cost") or {}
            if (cost.get("groups") or 0) < (cost.get("groups_total") or 0):
                reason = "the collector read only some groups (MQB_METRICS_KAFKA_MAX_GROUPS)"
            else:
                per_page = settings.MQB_KAFKA_PAGE_SIZE
                found = listing.index.page(page, per_page, name_filter, listing.freshness.as_of)
                return found, listing.freshness
    return await get_group_page(slug, page=page, name_filter=name_filter), live(reason)
