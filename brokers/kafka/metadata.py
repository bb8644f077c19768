"""Cluster metadata without its object graph, and a short pause of the garbage collector.

``list_topics`` on a cluster with 1,000 topics builds tens of thousands of
Python objects. Kept alive across a request, they get promoted by young
collections and soon make Python run full collections, 50-100 ms each in a
Django process (measured at 1,000 topics x 3 partitions). Reading what a page
needs in the worker thread with collection paused, and dropping the rest there,
leaves nothing to promote.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class MetadataSummary:
    """What most pages need of cluster metadata, without its object graph."""

    cluster_id: str | None
    controller_id: int
    brokers: tuple[tuple[int, str, int], ...]
    partitions: dict[str, tuple[int, ...]]
    missing_brokers: tuple[int, ...] = ()
    """brokers some partition names as a replica that metadata does not list: down"""
    under_replicated: dict[str, int] = field(default_factory=dict)
    """per topic with any, its partitions with fewer in-sync replicas than replicas"""
    offline: dict[str, int] = field(default_factory=dict)
    """per topic with any, its partitions without a leader"""


def summarize(metadata: Any) -> MetadataSummary:
    replicas: set[int] = set()
    under_replicated: dict[str, int] = {}
    offline: dict[str, int] = {}
    for name, topic in metadata.topics.items():
        for partition in topic.partitions.values():
            replicas.update(partition.replicas)
            if len(partition.isrs) < len(partition.replicas):
                under_replicated[name] = under_replicated.get(name, 0) + 1
            if partition.leader < 0:
                offline[name] = offline.get(name, 0) + 1
    return MetadataSummary(
        cluster_id=metadata.cluster_id,
        controller_id=metadata.controller_id,
        brokers=tuple(sorted((b.id, b.host, b.port) for b in metadata.brokers.values())),
        partitions={name: tuple(sorted(t.partitions)) for name, t in metadata.topics.items()},
        missing_brokers=tuple(sorted(replicas - set(metadata.brokers))),
        under_replicated=under_replicated,
        offline=offline,
    )


@contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection inside the block (process-wide, so keep it short)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
