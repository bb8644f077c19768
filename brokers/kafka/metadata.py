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
from dataclasses import dataclass
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


def summarize(metadata: Any) -> MetadataSummary:
    replicas: set[int] = set()
    for topic in metadata.topics.values():
        for partition in topic.partitions.values():
            replicas.update(partition.replicas)
    return MetadataSummary(
        cluster_id=metadata.cluster_id,
        controller_id=metadata.controller_id,
        brokers=tuple(sorted((b.id, b.host, b.port) for b in metadata.brokers.values())),
        partitions={name: tuple(sorted(t.partitions)) for name, t in metadata.topics.items()},
        missing_brokers=tuple(sorted(replicas - set(metadata.brokers))),
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
