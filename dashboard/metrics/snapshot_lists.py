"""Entity lists answered from the collector's latest sample instead of the broker.

The collector rewrites every cluster's snapshot (``dashboard.metrics.snapshot``)
once per sample interval. A list page asks :func:`read_listing` for an index
built from it: one Redis GET of the small ``status`` key tells the sample time;
the large ``latest`` key is read and parsed only when that time changed, and
whatever a list builds from it (rows, sort orders) is kept per process until
the next sample. A 50,000-queue snapshot is parsed once per interval, not per
request, and a usable ``status`` is itself reused for ``STATUS_REUSE_SECONDS``
(a new sample shows up at most that much later; an unusable one is read again
on every request, so a list goes back to the snapshot as soon as it can).

Once a list has been built for a sample, a newer sample is loaded and its
lists built in a background thread while requests are still answered from the
one before (its own "as of" time shown): at 50,000 queues loading and sorting a
sample takes about a second, which would otherwise land on the first request
after every sample. An index with a ``warm_from(previous)`` method is given the
previous one to compute again what was asked of it. Past the staleness limit
below, a request waits for the new sample as before.

A snapshot is not used (the caller reads the broker live and says why) when
there is none yet, when the collector's last check failed, or when the sample
is older than ``STALE_INTERVALS`` intervals (at least ``MIN_STALE_SECONDS``):
the collector is stopped or stuck.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar, cast

from dashboard.metrics.redis_keys import async_client, key, sync_client
from dashboard.metrics.snapshot import Snapshot, read_status

__all__ = ["Freshness", "Listing", "Snapshot", "forget", "live", "read_listing"]

STALE_INTERVALS = 3
MIN_STALE_SECONDS = 15.0
STATUS_REUSE_SECONDS = 1.0

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Freshness:
    """Where a list came from: ``snapshot`` (with its sample time) or ``live``
    (``reason`` says why, when it was not asked for)."""

    source: str
    as_of: datetime
    reason: str = ""
    interval: float | None = None

    @property
    def from_snapshot(self) -> bool:
        return self.source == "snapshot"

    def as_api(self) -> dict[str, Any]:
        return {"source": self.source, "as_of": self.as_of.isoformat(), "live_reason": self.reason}


def live(reason: str = "") -> Freshness:
    return Freshness("live", datetime.now(UTC), reason)


@dataclass
class _Entry:
    snapshot: Snapshot
    sampled_at: float
    built: dict[str, Any] = field(default_factory=dict)


_entries: dict[str, _Entry] = {}
_statuses: dict[str, tuple[float, dict[str, Any]]] = {}
_builders: dict[str, dict[str, Callable[[Snapshot], Any]]] = {}
_refreshing: set[str] = set()
_lock = threading.Lock()


@dataclass(frozen=True)
class Listing(Generic[T]):
    index: T
    freshness: Freshness
    snapshot: Snapshot


def _unusable(status: dict[str, Any], now: float) -> str:
    if not status:
        return "the collector has not sampled this cluster yet"
    if status.get("ok") is False:
        return "the collector cannot reach this cluster"
    sampled = status.get("sampled_at")
    if not isinstance(sampled, int | float):
        return "the collector has not sampled this cluster yet"
    interval = float(status.get("interval") or 0) or MIN_STALE_SECONDS
    age = now - float(sampled)
    if age > max(MIN_STALE_SECONDS, STALE_INTERVALS * interval):
        return f"the collector's last sample is {age:.0f} s old"
    return ""


async def _entry(slug: str, status: dict[str, Any]) -> _Entry | None:
    sampled = float(status["sampled_at"])
    entry = _entries.get(slug)
    if entry is not None and entry.sampled_at >= sampled:
        return entry
    raw = await async_client().get(key("latest", slug))
    if not raw:
        return None
    data = await asyncio.to_thread(json.loads, raw)
    if not isinstance(data, dict) or not isinstance(data.get("time"), int | float):
        return None
    fresh = _Entry(Snapshot(slug, status, data), float(data["time"]))
    with _lock:
        current = _entries.get(slug)
        if current is None or current.sampled_at < fresh.sampled_at:
            _entries[slug] = fresh
        else:
            fresh = current
    return fresh


def _max_age(status: dict[str, Any]) -> float:
    interval = float(status.get("interval") or 0) or MIN_STALE_SECONDS
    return max(MIN_STALE_SECONDS, STALE_INTERVALS * interval)


def _refresh(slug: str, status: dict[str, Any]) -> None:
    """Load the cluster's newest sample and build every list built before (a thread)."""
    try:
        raw = sync_client().get(key("latest", slug))
        data = json.loads(raw) if raw else None
        if not isinstance(data, dict) or not isinstance(data.get("time"), int | float):
            return
        fresh = _Entry(Snapshot(slug, status, data), float(data["time"]))
        with _lock:
            current = _entries.get(slug)
            builders = dict(_builders.get(slug, {}))
        for name, build in builders.items():
            index = build(fresh.snapshot)
            previous = current.built.get(name) if current is not None else None
            warm = getattr(index, "warm_from", None)
            if previous is not None and callable(warm):
                warm(previous)
            fresh.built[name] = index
        with _lock:
            current = _entries.get(slug)
            if current is None or current.sampled_at < fresh.sampled_at:
                _entries[slug] = fresh
    except Exception:
        log.exception("%s: the newest snapshot could not be loaded", slug)
    finally:
        with _lock:
            _refreshing.discard(slug)


def _refresh_soon(slug: str, status: dict[str, Any]) -> None:
    with _lock:
        if slug in _refreshing:
            return
        _refreshing.add(slug)
    threading.Thread(
        target=_refresh, args=(slug, status), name=f"snapshot-{slug}", daemon=True
    ).start()


async def read_listing(slug: str, name: str, build: Callable[[Snapshot], T]) -> Listing[T] | str:
    """``build(snapshot)`` of the cluster's latest sample (built once per sample and
    process, under ``name``), or why the snapshot cannot answer."""
    kept = _statuses.get(slug)
    if kept is not None and time.monotonic() - kept[0] < STATUS_REUSE_SECONDS:
        status = kept[1]
    else:
        status = await read_status(slug)
    reason = _unusable(status, time.time())
    if reason:
        _statuses.pop(slug, None)
        return reason
    if kept is None or kept[1] is not status:
        _statuses[slug] = (time.monotonic(), status)
    with _lock:
        _builders.setdefault(slug, {})[name] = build
        entry = _entries.get(slug)
    if (
        entry is not None
        and entry.sampled_at < float(status["sampled_at"])
        and name in entry.built
        and time.time() - entry.sampled_at <= _max_age(status)
    ):
        _refresh_soon(slug, status)  # answered from the sample before meanwhile
    else:
        entry = await _entry(slug, status)
    if entry is None:
        return "the collector has not sampled this cluster yet"
    index = cast("T | None", entry.built.get(name))
    if index is None:
        index = await asyncio.to_thread(build, entry.snapshot)
        entry.built[name] = index
    as_of = datetime.fromtimestamp(entry.sampled_at, UTC)
    interval = entry.snapshot.data.get("interval")
    freshness = Freshness(
        "snapshot", as_of, interval=float(interval) if isinstance(interval, int | float) else None
    )
    return Listing(index, freshness, entry.snapshot)


def forget() -> None:
    """Drop every cached snapshot (tests and benchmarks that rewrite snapshots)."""
    with _lock:
        _entries.clear()
        _statuses.clear()
        _builders.clear()
