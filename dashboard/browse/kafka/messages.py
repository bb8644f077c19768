"""The Kafka message browser: parameters, bounded reads and searches, decoding, downloads."""

from __future__ import annotations

import asyncio
import concurrent.futures
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from brokers.decode import Decoded, HeaderValue, decode_body, decode_headers
from brokers.kafka import browse as kafka_browse
from brokers.kafka.models import KafkaRecord, RecordPage
from dashboard.browse.kafka.access import check_position, check_topic, get_kafka, parse_int
from dashboard.core.limits import kafka_reads
from dashboard.core.params import EPOCH_MS_MAX, INT32_MAX, InvalidInput, InvalidParameter, epoch_ms
from dashboard.core.params import parse_int as bounded_int

START_CHOICES = ("newest", "oldest", "offset", "timestamp")
SEARCH_IN = ("both", "key", "value")
_CONTENT_TYPE_HEADERS = ("content-type", "contenttype", "content_type")
# Decoding this many bytes or more is moved off the event loop.
_DECODE_INLINE_BYTES = 256 * 1024


@dataclass(frozen=True)
class BrowseQuery:
    """What the user asked to see; ``params()`` turns it back into a query string."""

    partitions: tuple[int, ...] = ()
    start: str = "newest"
    offset: int | None = None
    timestamp: datetime | None = None
    cursor: tuple[tuple[int, int], ...] = ()
    limit: int = 50
    search: str = ""
    search_in: str = "both"

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        query = replace(self, **changes)
        pairs = [("partition", str(p)) for p in query.partitions]
        pairs.append(("start", query.start))
        if query.offset is not None:
            pairs.append(("offset", str(query.offset)))
        if query.timestamp is not None:
            pairs.append(("timestamp", query.timestamp.isoformat()))
        if query.cursor:
            pairs.append(("cursor", ",".join(f"{p}:{o}" for p, o in query.cursor)))
        pairs.append(("limit", str(query.limit)))
        if query.search:
            pairs += [("q", query.search), ("in", query.search_in)]
        return pairs


@dataclass(frozen=True)
class RecordView:
    record: KafkaRecord
    key: Decoded
    value: Decoded
    headers: tuple[HeaderValue, ...]

    @property
    def partition(self) -> int:
        return self.record.partition

    @property
    def offset(self) -> int:
        return self.record.offset

    @property
    def timestamp(self) -> datetime | None:
        return self.record.timestamp


@dataclass(frozen=True)
class MessagePage:
    topic: str
    query: BrowseQuery
    page: RecordPage
    records: tuple[RecordView, ...]
    next_cursor: tuple[tuple[int, int], ...]
    prev_cursor: tuple[tuple[int, int], ...] | None
    bounds: dict[str, Any] = field(default_factory=dict)

    @property
    def is_search(self) -> bool:
        return bool(self.query.search)

    @property
    def bound_hit(self) -> bool:
        return self.page.stopped in ("time", "records", "bytes")


def parse_timestamp(raw: str) -> datetime:
    """ISO 8601 (naive means the dashboard's time zone) or epoch milliseconds."""
    text = raw.strip()
    if text.isascii() and text.isdigit():
        ms = bounded_int(text, name="timestamp", high=EPOCH_MS_MAX, error=InvalidInput)
        return datetime.fromtimestamp(ms / 1000, UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"timestamp must be ISO 8601 (2024-05-01T12:00:00) or epoch milliseconds,"
            f" not {text[:40]!r}"
        ) from None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment, timezone.get_current_timezone())
    timestamp_ms(moment)  # refuses times Kafka cannot look up
    return moment


def timestamp_ms(moment: datetime) -> int:
    """Kafka's record time (milliseconds since 1970) of ``moment``."""
    try:
        return epoch_ms(moment, name="timestamp", error=InvalidInput)
    except OverflowError:  # past the year 9999 once in UTC
        raise InvalidInput("timestamp is out of range") from None


def parse_cursor(raw: str) -> tuple[tuple[int, int], ...]:
    pairs = []
    for part in filter(None, raw.split(",")):
        partition, _, offset = part.partition(":")
        try:
            pairs.append(
                (
                    bounded_int(partition, name="partition", low=0, high=INT32_MAX),
                    bounded_int(offset, name="offset", low=0),
                )
            )
        except InvalidParameter as exc:
            raise InvalidInput(
                f"cursor must look like 0:120,1:98 ({exc.message}), not {raw[:40]!r}"
            ) from None
    return tuple(pairs)


def parse_browse_query(params: Any) -> BrowseQuery:
    """A :class:`BrowseQuery` from a QueryDict; :class:`InvalidInput` says what is wrong."""
    partitions = []
    for raw in params.getlist("partition"):
        if str(raw).strip():
            partitions.append(parse_int({"partition": raw}, "partition", high=INT32_MAX))
    start = str(params.get("start") or "newest")
    cursor = parse_cursor(str(params.get("cursor") or ""))
    if start not in (*START_CHOICES, "cursor"):
        raise InvalidInput(f"start must be one of {', '.join(START_CHOICES)}")
    limit = parse_int(params, "limit", settings.MQB_KAFKA_BROWSE_LIMIT, low=1)
    if limit is None or limit > settings.MQB_KAFKA_BROWSE_MAX:
        raise InvalidInput(f"limit must be at most {settings.MQB_KAFKA_BROWSE_MAX}")
    offset = parse_int(params, "offset", low=0)
    if start == "offset" and offset is None:
        raise InvalidInput("start=offset needs an offset")
    raw_time = str(params.get("timestamp") or "")
    timestamp = parse_timestamp(raw_time) if raw_time.strip() else None
    if start == "timestamp" and timestamp is None:
        raise InvalidInput("start=timestamp needs a timestamp")
    search = str(params.get("q") or "")
    if len(search) > 500:
        raise InvalidInput("the search text is limited to 500 characters")
    search_in = str(params.get("in") or "both")
    if search_in not in SEARCH_IN:
        raise InvalidInput(f"in must be one of {', '.join(SEARCH_IN)}")
    return BrowseQuery(
        partitions=tuple(sorted({p for p in partitions if p is not None})),
        start="cursor" if cursor else start,
        offset=offset,
        timestamp=timestamp,
        cursor=cursor,
        limit=limit,
        search=search,
        search_in=search_in,
    )


def decode_record(record: KafkaRecord) -> RecordView:
    limit = settings.MQB_DISPLAY_LIMIT
    content_type = next(
        (
            v.decode("utf-8", "replace")
            for k, v in record.headers
            if k.lower() in _CONTENT_TYPE_HEADERS and v is not None
        ),
        None,
    )
    return RecordView(
        record=record,
        key=decode_body(record.key, limit=limit),
        value=decode_body(
            record.value, content_type=content_type, headers=record.headers, limit=limit
        ),
        headers=decode_headers(record.headers),
    )


async def get_messages(slug: str, topic: str, query: BrowseQuery, *, reader: str) -> MessagePage:
    """A page or a search, on one of ``reader``'s share of the Kafka read threads.

    :class:`~dashboard.core.limits.Busy` when ``reader`` has too many reads running.
    """
    check_topic(topic)
    async with kafka_reads().slot(reader) as executor:
        return await _get_messages(slug, topic, query, executor)


async def _get_messages(
    slug: str, topic: str, query: BrowseQuery, executor: concurrent.futures.Executor
) -> MessagePage:
    topics = await get_kafka(slug)
    match = None
    if query.search:
        needle = query.search.encode("utf-8")
        match = kafka_browse.substring_matcher(
            needle, in_key=query.search_in != "value", in_value=query.search_in != "key"
        )
    page = await topics.read_page(
        topic,
        partitions=query.partitions or None,
        start=query.start,
        offset=query.offset,
        timestamp_ms=timestamp_ms(query.timestamp) if query.timestamp else None,
        cursor=dict(query.cursor),
        limit=query.limit,
        max_bytes=settings.MQB_KAFKA_BROWSE_MAX_BYTES,
        match=match,
        max_scan=settings.MQB_KAFKA_SEARCH_MAX_RECORDS if match else None,
        max_seconds=settings.MQB_KAFKA_SEARCH_MAX_SECONDS if match else None,
        executor=executor,
    )
    size = sum(len(r.key or b"") + len(r.value or b"") for r in page.records)
    if size >= _DECODE_INLINE_BYTES:
        views = await asyncio.to_thread(lambda: tuple(map(decode_record, page.records)))
    else:
        views = tuple(map(decode_record, page.records))
    share = kafka_browse.quotas([r.partition for r in page.ranges], query.limit)
    prev = tuple(
        (r.partition, max(r.low or 0, (r.start or 0) - share[r.partition])) for r in page.ranges
    )
    has_prev = any((r.start or 0) > (r.low or 0) for r in page.ranges) and not query.search
    return MessagePage(
        topic=topic,
        query=query,
        page=page,
        records=views,
        next_cursor=tuple((r.partition, r.next or 0) for r in page.ranges),
        prev_cursor=prev if has_prev else None,
        bounds={
            "max_records": settings.MQB_KAFKA_SEARCH_MAX_RECORDS,
            "max_seconds": settings.MQB_KAFKA_SEARCH_MAX_SECONDS,
            "max_bytes": settings.MQB_KAFKA_BROWSE_MAX_BYTES,
        },
    )


async def _read_record(
    slug: str, topic: str, partition: int, offset: int, reader: str
) -> KafkaRecord:
    check_topic(topic)
    check_position(partition, offset)
    async with kafka_reads().slot(reader) as executor:
        topics = await get_kafka(slug)
        return await topics.read_record(topic, partition, offset, executor=executor)


async def get_record(
    slug: str, topic: str, partition: int, offset: int, *, reader: str
) -> RecordView:
    return decode_record(await _read_record(slug, topic, partition, offset, reader))


async def get_record_bytes(
    slug: str, topic: str, partition: int, offset: int, part: str, *, reader: str
) -> bytes | None:
    """The full key or value of one record, re-read from the broker (for downloads)."""
    if part not in ("key", "value"):
        raise InvalidInput("part must be key or value")
    record = await _read_record(slug, topic, partition, offset, reader)
    return record.key if part == "key" else record.value
