"""Finding Kafka dead-letter topics, with their source topic and depth.

:func:`discover_kafka`: topics named ``*.DLT``, ``*-dlt``, ``*-dlq``,
``*.dlq`` (and ``_``), plus the configured ones; a topic whose name without the
suffix exists is given that topic as its source. Depth is the sum over
partitions of high minus low watermark (records kept, captured or not).

Names, partitions and depths are read off the event loop with the adapter's
AdminClient (``broker.admin``) and timeout (``broker.config.timeout``):
``list_topics`` blocks, so it runs in a worker thread; ``list_offsets`` returns
futures, awaited under one deadline. A topic whose watermarks did not all
arrive has an unknown (None) depth, never 0.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from brokers.base import BrokerTimeout, BrokerUnavailable
from brokers.base.deadletters import NAME_RE, DeadLetterSource, DiscoveredDLQ, Discovery

_SUFFIX = re.compile(r"(?i)[._-](dlq|dlt)$")


async def topic_names(broker: Any) -> dict[str, list[int]]:
    """Every topic with its partition ids."""
    timeout = float(broker.config.timeout)
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout + 1):
            metadata = await loop.run_in_executor(
                None, lambda: broker.admin.list_topics(timeout=timeout)
            )
    except KafkaException as exc:
        raise BrokerUnavailable(f"Kafka metadata request failed: {exc}") from None
    except TimeoutError:
        raise BrokerTimeout(
            f"Kafka did not answer a metadata request within {timeout:g} s"
        ) from None
    return {name: sorted(t.partitions) for name, t in metadata.topics.items()}


async def _offsets(broker: Any, partitions: list[TopicPartition], spec: Any) -> dict[Any, int]:
    if not partitions:
        return {}
    timeout = float(broker.config.timeout)
    futures = broker.admin.list_offsets({tp: spec for tp in partitions}, request_timeout=timeout)
    wrapped = {(tp.topic, tp.partition): asyncio.wrap_future(f) for tp, f in futures.items()}
    _, pending = await asyncio.wait(wrapped.values(), timeout=timeout + 1)
    for task in pending:
        task.cancel()
    found = {}
    for key, task in wrapped.items():
        if task in pending or task.cancelled() or task.exception() is not None:
            continue
        found[key] = int(task.result().offset)
    return found


async def topic_depths(broker: Any, topics: dict[str, list[int]]) -> dict[str, int | None]:
    """Sum of high - low watermark per topic; None when a partition did not answer."""
    depths, _ = await topic_offsets(broker, topics)
    return depths


async def topic_offsets(
    broker: Any, topics: dict[str, list[int]]
) -> tuple[dict[str, int | None], dict[str, dict[int, int]]]:
    """Each topic's depth (as :func:`topic_depths`) and the high watermark of each of its
    partitions that answered."""
    partitions = [TopicPartition(t, p) for t, ids in topics.items() for p in ids]
    low, high = await asyncio.gather(
        _offsets(broker, partitions, OffsetSpec.earliest()),  # type: ignore[no-untyped-call]
        _offsets(broker, partitions, OffsetSpec.latest()),  # type: ignore[no-untyped-call]
    )
    ends: dict[str, dict[int, int]] = {}
    for (topic, partition), offset in high.items():
        ends.setdefault(topic, {})[partition] = offset
    depths: dict[str, int | None] = {}
    for topic, ids in topics.items():
        total: int | None = 0
        for p in ids:
            if (topic, p) in low and (topic, p) in high and total is not None:
                total += high[(topic, p)] - low[(topic, p)]
            else:
                total = None
        depths[topic] = total
    return depths, ends


async def end_offsets(broker: Any, topic: str, partitions: list[int]) -> dict[int, int]:
    """High watermark per partition (those that answered)."""
    found = await _offsets(
        broker,
        [TopicPartition(topic, p) for p in partitions],
        OffsetSpec.latest(),  # type: ignore[no-untyped-call]
    )
    return {p: o for (_, p), o in found.items()}


async def discover_kafka(broker: Any, *, configured: Iterable[str] = ()) -> Discovery:
    """DLQ topics by name and by configuration; ``broker`` is a connected KafkaBroker."""
    partitions_of = await topic_names(broker)
    extra = {name for name in configured if name}
    names = sorted(
        n for n in partitions_of if not n.startswith("__") and (NAME_RE.search(n) or n in extra)
    )
    depths, ends = await topic_offsets(broker, {n: partitions_of[n] for n in names})
    dlqs = []
    for name in names:
        base = _SUFFIX.sub("", name)
        sources: tuple[DeadLetterSource, ...] = ()
        if base != name and base in partitions_of:
            sources = (DeadLetterSource(base, "name", note="the DLQ's name minus its suffix"),)
        found_by = tuple(
            label
            for label, hit in (("name", bool(NAME_RE.search(name))), ("configured", name in extra))
            if hit
        )
        dlqs.append(
            DiscoveredDLQ(
                kind="kafka",
                name=name,
                vhost="",
                depth=depths.get(name),
                ends=tuple(sorted(ends.get(name, {}).items())),
                found_by=found_by,
                sources=sources,
                queue_type="topic",
            )
        )
    missing = sorted(extra - set(partitions_of))
    notes = tuple(f"configured DLQ topic {n!r} does not exist" for n in missing)
    return Discovery(
        dlqs=tuple(dlqs),
        checked_at=datetime.now(UTC),
        scanned=len(partitions_of),
        complete=True,
        notes=notes,
    )
