"""Reading Kafka records: pages of a topic, bounded searches, single records.

Features: read a page of records from chosen partitions, starting at the
oldest record, the newest N, an offset, a timestamp (ListOffsets by time) or
a cursor (per-partition offsets from the previous page); search keys and/or
values for a byte substring within a bounded scan; re-read one record by
partition and offset (for downloads).

Side-effect free: reads use the pooled assign-only consumers of
:mod:`brokers.kafka.clients`, which never commit, never join a group and never
create topics; topic existence is checked first (DescribeTopicPartitions),
so a missing topic is :class:`NotFound`.

Bounds: a page stops at its record quota per partition, the end of each
partition (its high watermark when the read began), its byte budget or its
time budget, whichever comes first; a search stops at ``max_scan`` records or
``max_seconds``. Every result says, per partition, which offsets were read and
whether the read reached the end, and ``stopped`` says which bound cut it short.

Limitations: a search matches a case-sensitive byte substring of the raw key
or value (not of the decoded text). Paging back steps each partition's start
back by its share of the page in offsets, so on compacted topics or around
transaction markers an "older" page may hold fewer records. Reads see what a
``read_committed`` consumer sees (librdkafka's default).
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    TIMESTAMP_CREATE_TIME,
    TIMESTAMP_LOG_APPEND_TIME,
    KafkaError,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from brokers.base import NotFound
from brokers.base.browse import Matcher
from brokers.kafka import KafkaBroker, Partition
from brokers.kafka.adapter import offsets_found
from brokers.kafka.models import KafkaRecord, RecordPage, ScannedRange
from brokers.kafka.topics import describe_request, described

START_MODES = ("oldest", "newest", "offset", "timestamp", "cursor")
# Reads hold a thread for up to their time bound (seconds, for a search): they
# get their own few threads so they never starve the loop's default executor,
# which every other Kafka call uses.
READ_THREADS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="kafka-read")


@dataclass
class _Progress:
    start: int
    quota: int
    first: int | None = None
    last: int | None = None
    count: int = 0
    at_end: bool = False


@dataclass
class _Read:
    records: list[KafkaRecord] = field(default_factory=list)
    scanned: int = 0
    stopped: str = ""


def quotas(partitions: Sequence[int], limit: int) -> dict[int, int]:
    """``limit`` records shared out over ``partitions`` as evenly as possible."""
    share, extra = divmod(max(0, limit), max(1, len(partitions)))
    return {p: share + (1 if i < extra else 0) for i, p in enumerate(partitions)}


async def read_page(
    broker: KafkaBroker,
    topic: str,
    *,
    partitions: Sequence[int] | None = None,
    start: str = "oldest",
    offset: int | None = None,
    timestamp_ms: int | None = None,
    cursor: dict[int, int] | None = None,
    limit: int = 50,
    max_bytes: int = 16 * 1024 * 1024,
    match: Matcher | None = None,
    max_scan: int | None = None,
    max_seconds: float | None = None,
    executor: concurrent.futures.Executor | None = None,
) -> RecordPage:
    """A page of records (``match`` None) or of search hits (``match`` set).

    Browsing reads each partition's share of ``limit``; a search reads every
    chosen partition until its end or the scan bounds, keeping up to ``limit`` hits.
    The read runs on ``executor`` (default: this module's few read threads).
    """
    if start not in START_MODES:
        raise ValueError(f"start must be one of {', '.join(START_MODES)}")
    seconds = max_seconds if max_seconds is not None else broker.config.timeout
    # One hop to a read thread, which asks the partitions and their watermarks and
    # then reads: the admin requests are sent and waited for there, not in the loop.
    existing, low, high, progress, read = await broker.blocking(
        lambda: _browse(
            broker,
            topic,
            sorted(set(partitions)) if partitions else None,
            start=start,
            offset=offset,
            timestamp_ms=timestamp_ms,
            cursor=cursor or {},
            limit=limit,
            seconds=seconds,
            max_bytes=max_bytes,
            match=match,
            max_scan=max_scan,
        ),
        what=f"read of {topic!r}",
        seconds=seconds + broker.config.timeout + 1,
        executor=executor or READ_THREADS,
    )
    chosen = sorted(progress)
    if len(chosen) == 1:
        read.records.sort(key=lambda r: r.offset)
    else:
        read.records.sort(key=lambda r: (r.timestamp or _EPOCH, r.partition, r.offset))
    ranges = tuple(
        ScannedRange(
            partition=p,
            low=low.get((topic, p)),
            high=high.get((topic, p)),
            start=g.start,
            first=g.first,
            last=g.last,
            next=g.last + 1 if g.last is not None else g.start,
            count=g.count,
            at_end=g.at_end,
        )
        for p, g in sorted(progress.items())
    )
    return RecordPage(
        topic=topic,
        partitions=tuple(existing),
        records=tuple(read.records),
        ranges=ranges,
        scanned=read.scanned,
        stopped=read.stopped,
        checked_at=datetime.now(UTC),
    )


_EPOCH = datetime.fromtimestamp(0, UTC)


def _browse(
    broker: KafkaBroker,
    topic: str,
    partitions: list[int] | None,
    *,
    start: str,
    offset: int | None,
    timestamp_ms: int | None,
    cursor: dict[int, int],
    limit: int,
    seconds: float,
    max_bytes: int,
    match: Matcher | None,
    max_scan: int | None,
) -> tuple[list[int], dict[Partition, int], dict[Partition, int], dict[int, _Progress], _Read]:
    """In a read thread: the topic's partitions, the watermarks, where each chosen
    partition starts, and the read (:func:`_read`).

    A start that does not depend on the watermarks (an offset, a cursor, the oldest
    record, of partitions named in the request) is assigned before they are asked, so
    the consumer's first fetch is under way while the admin requests are answered;
    :func:`_read` assigns again where the watermarks moved the start (out of range).
    """
    with broker.clients.consumer() as consumer:
        early = _early_starts(partitions, start, offset, cursor)
        if early:
            consumer.assign([TopicPartition(topic, p, at) for p, at in early.items()])
        existing, low, high, by_time = _positions(broker, topic, partitions, start, timestamp_ms)
        progress, read = _start_and_read(
            broker,
            consumer,
            topic,
            partitions or existing,
            existing,
            early,
            low={p: lo for (_, p), lo in low.items()},
            high={p: hi for (_, p), hi in high.items()},
            by_time={p: at for (_, p), at in by_time.items()},
            start=start,
            offset=offset,
            cursor=cursor,
            limit=limit,
            seconds=seconds,
            max_bytes=max_bytes,
            match=match,
            max_scan=max_scan,
        )
    return existing, low, high, progress, read


def _early_starts(
    partitions: list[int] | None, start: str, offset: int | None, cursor: dict[int, int]
) -> dict[int, int]:
    """Where each named partition starts when the watermarks cannot change it unless it
    is out of range (a logical ``OFFSET_BEGINNING`` for the oldest); empty otherwise."""
    if not partitions:
        return {}
    if start == "oldest":
        return dict.fromkeys(partitions, OFFSET_BEGINNING)
    if start == "offset":
        return dict.fromkeys(partitions, int(offset or 0))
    if start == "cursor":
        return {p: cursor.get(p, OFFSET_BEGINNING) for p in partitions}
    return {}


def _start_and_read(
    broker: KafkaBroker,
    consumer: Any,
    topic: str,
    chosen: list[int],
    existing: list[int],
    early: dict[int, int],
    *,
    low: dict[int, int],
    high: dict[int, int],
    by_time: dict[int, int],
    start: str,
    offset: int | None,
    cursor: dict[int, int],
    limit: int,
    seconds: float,
    max_bytes: int,
    match: Matcher | None,
    max_scan: int | None,
) -> tuple[dict[int, _Progress], _Read]:
    missing = [p for p in chosen if p not in existing]
    if missing:
        raise NotFound(f"topic {topic!r} has no partition {missing[0]}")
    share = quotas(chosen, limit)
    # A search "from the newest" scans the newest max_scan records of the partitions.
    tail = quotas(chosen, max_scan or limit) if match is not None else share
    progress: dict[int, _Progress] = {}
    for p in chosen:
        lo, hi = low.get(p), high.get(p)
        if lo is None or hi is None:
            raise broker.translate(None, f"watermarks of {topic} partition {p}")
        if start == "oldest":
            at = lo
        elif start == "newest":
            at = hi - tail[p]
        elif start == "offset":
            at = int(offset or 0)
        elif start == "timestamp":
            at = by_time.get(p, -1)
            at = hi if at < 0 else at  # no record at or after that time
        else:
            at = cursor.get(p, lo)
        progress[p] = _Progress(start=min(max(at, lo), hi), quota=share[p])
    read = _read(
        consumer,
        topic,
        progress,
        {p: low[p] if at == OFFSET_BEGINNING else at for p, at in early.items()},
        high=high,
        seconds=seconds,
        max_bytes=max_bytes,
        match=match,
        max_scan=max_scan,
        max_hits=limit,
    )
    return progress, read


def _positions(
    broker: KafkaBroker,
    topic: str,
    partitions: list[int] | None,
    start: str,
    timestamp_ms: int | None,
) -> tuple[list[int], dict[Partition, int], dict[Partition, int], dict[Partition, int]]:
    """The topic's partitions; the low and high watermarks of ``partitions`` (None:
    all of them), and with ``start=timestamp`` their offsets at that time. Blocks:
    the requests are sent at once when the partitions are known, else the offsets
    follow the topic's description."""
    what = f"topic {topic!r}"
    description = describe_request(broker, topic)
    if partitions is None:
        answer = broker.wait_all({0: description}, what)[0]
        partitions = sorted(p.id for p in described(answer, topic).partitions)
        pending: dict[Any, concurrent.futures.Future[Any]] = {}
    else:
        pending = {("topic", 0): description}
    wanted = [(topic, p) for p in partitions]
    specs = {"low": OffsetSpec.earliest(), "high": OffsetSpec.latest()}  # type: ignore[no-untyped-call]
    if start == "timestamp":
        specs["time"] = OffsetSpec.for_timestamp(int(timestamp_ms or 0))
    for name, spec in specs.items():
        pending.update(((name, n), f) for n, f in broker.offsets_requests(wanted, spec).items())
    answers = broker.wait_all(pending, "ListOffsets request")
    if ("topic", 0) in answers:
        existing = sorted(p.id for p in described(answers.pop(("topic", 0)), topic).partitions)
    else:
        existing = partitions
    found = {
        name: offsets_found({n: a for (kind, n), a in answers.items() if kind == name})
        for name in ("low", "high", "time")
    }
    return existing, found["low"], found["high"], found["time"]


def _read(
    consumer: Any,
    topic: str,
    progress: dict[int, _Progress],
    assigned: dict[int, int],
    *,
    high: dict[int, int],
    seconds: float,
    max_bytes: int,
    match: Matcher | None,
    max_scan: int | None,
    max_hits: int,
) -> _Read:
    """The blocking read, in a worker thread, with a pooled consumer already assigned
    at ``assigned`` (partition -> offset; empty: not assigned yet)."""
    result = _Read()
    deadline = time.monotonic() + seconds
    for p, g in progress.items():
        g.at_end = g.start >= high[p]
    active = {p for p, g in progress.items() if not g.at_end and (match or g.quota > 0)}
    if not active:
        return result
    used = 0
    starts = {p: progress[p].start for p in sorted(active)}
    if starts != assigned:
        consumer.assign([TopicPartition(topic, p, at) for p, at in starts.items()])
    while active:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            result.stopped = "time"
            break
        # Ask for exactly what is still missing: consume() waits for the whole
        # batch, and a partial fetch would make it wait for the next one.
        wanted = 500 if match else sum(progress[p].quota - progress[p].count for p in active)
        batch = consumer.consume(num_messages=max(1, min(500, wanted)), timeout=min(0.1, remaining))
        for message in batch:
            part, offset = message.partition(), message.offset()
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise KafkaException(error)
            if part is None or part not in active or message.topic() != topic:
                continue  # prefetched past a partition's quota, or stale
            if error is not None:
                progress[part].at_end = True
                active.discard(part)
                continue
            if offset is None:
                continue
            g = progress[part]
            g.first = offset if g.first is None else g.first
            g.last = offset
            g.count += 1
            result.scanned += 1
            key, value = message.key(), message.value()
            if match is None or match(key, value):
                result.records.append(_record(message))
                used += len(key or b"") + len(value or b"")
            if offset + 1 >= high[part]:
                g.at_end = True
            if g.at_end or (match is None and g.count >= g.quota):
                # Not consumer.pause() (see clients): its prefetched records
                # are skipped instead.
                active.discard(part)
            if match is not None and len(result.records) >= max_hits:
                result.stopped = "hits"
            elif used >= max_bytes:
                result.stopped = "bytes"
            elif max_scan is not None and result.scanned >= max_scan:
                result.stopped = "records"
            if result.stopped:
                return result
    return result


def _record(message: Any) -> KafkaRecord:
    kind, ms = message.timestamp()
    timestamp = datetime.fromtimestamp(ms / 1000, UTC) if ms is not None and ms >= 0 else None
    return KafkaRecord(
        topic=message.topic(),
        partition=message.partition(),
        offset=message.offset(),
        timestamp=timestamp,
        timestamp_type=_TIMESTAMP_TYPES.get(kind),
        key=message.key(),
        value=message.value(),
        headers=tuple((str(k), v) for k, v in (message.headers() or ())),
    )


_TIMESTAMP_TYPES = {TIMESTAMP_CREATE_TIME: "create", TIMESTAMP_LOG_APPEND_TIME: "log append"}


async def read_record(
    broker: KafkaBroker,
    topic: str,
    partition: int,
    offset: int,
    *,
    executor: concurrent.futures.Executor | None = None,
) -> KafkaRecord:
    """The one record at ``partition``/``offset``; :class:`NotFound` if there is none."""
    page = await read_page(
        broker,
        topic,
        partitions=[partition],
        start="cursor",
        cursor={partition: offset},
        limit=1,
        executor=executor,
    )
    if not page.records or page.records[0].offset != offset:
        raise NotFound(f"no record at offset {offset} of {topic} partition {partition}")
    return page.records[0]


def substring_matcher(needle: bytes, *, in_key: bool, in_value: bool) -> Matcher:
    """A byte-substring test of keys and/or values (case-sensitive, like ``grep -F``)."""

    def match(key: bytes | None, value: bytes | None) -> bool:
        return bool(
            (in_key and key is not None and needle in key)
            or (in_value and value is not None and needle in value)
        )

    return match
