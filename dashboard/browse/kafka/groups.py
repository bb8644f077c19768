"""Kafka consumer groups: list, detail, and resetting offsets (preview, then apply)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from brokers.kafka import offsets as kafka_offsets
from brokers.kafka.errors import GroupNotEmpty
from brokers.kafka.group_models import GroupDetail, GroupPage, OffsetResetPlan
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
