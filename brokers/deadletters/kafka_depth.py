"""Topic names, partitions and depths for Kafka DLQ discovery, off the event loop.

Uses the adapter's AdminClient (``broker.admin``) and timeout
(``broker.config.timeout``): ``list_topics`` blocks, so it runs in a worker
thread; ``list_offsets`` returns futures, awaited under one deadline. A topic
whose watermarks did not all arrive has an unknown (None) depth, never 0.
"""

from __future__ import annotations

import asyncio
from typing import Any

from confluent_kafka import KafkaException, TopicPartition
from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]

from brokers.base import BrokerTimeout, BrokerUnavailable


async def topic_names(broker: Any) -> dict[str, list[int]]:
    """Every topic with its partition ids."""
    timeout = float(broker.config.timeout)
    loop = asyncio.get_running_loop()
    try:
        metadata = await asyncio.wait_for(
            loop.run_in_executor(None, lambda: broker.admin.list_topics(timeout=timeout)),
            timeout + 1,
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
    partitions = [TopicPartition(t, p) for t, ids in topics.items() for p in ids]
    low, high = await asyncio.gather(
        _offsets(broker, partitions, OffsetSpec.earliest()),  # type: ignore[no-untyped-call]
        _offsets(broker, partitions, OffsetSpec.latest()),  # type: ignore[no-untyped-call]
    )
    depths: dict[str, int | None] = {}
    for topic, ids in topics.items():
        total: int | None = 0
        for p in ids:
            if (topic, p) in low and (topic, p) in high and total is not None:
                total += high[(topic, p)] - low[(topic, p)]
            else:
                total = None
        depths[topic] = total
    return depths


async def end_offsets(broker: Any, topic: str, partitions: list[int]) -> dict[int, int]:
    """High watermark per partition (those that answered)."""
    found = await _offsets(
        broker,
        [TopicPartition(topic, p) for p in partitions],
        OffsetSpec.latest(),  # type: ignore[no-untyped-call]
    )
    return {p: o for (_, p), o in found.items()}
