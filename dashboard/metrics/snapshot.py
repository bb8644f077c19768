"""The latest sample of every cluster, kept in Redis by the collector.

Prometheus, the consumers page and websockets read the newest numbers from
here instead of asking brokers or scanning the history table. Per cluster two
keys: ``latest`` (every entity's values, compact JSON, rewritten each sample)
and ``status`` (ok or unavailable since when, sample time and cost; small).
"""

from __future__ import annotations

import heapq
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from brokers.base.metrics import FIELDS, ClusterSample, Values
from dashboard.core.jsonb import compact_json
from dashboard.metrics.redis_keys import async_client, key, sync_client

KEEP_SECONDS = 24 * 3600


def encode_sample(sample: ClusterSample, interval: float) -> bytes:
    entities: dict[str, list[list[Any]]] = {}
    extra: dict[str, dict[str, Any]] = {}
    for p in sample.points:
        entities.setdefault(p.entity_type, []).append([p.entity, *p.values])
        if p.extra:
            extra[f"{p.entity_type}\x1f{p.entity}"] = p.extra
    return compact_json(
        {
            "cluster": sample.slug,
            "kind": sample.kind,
            "time": sample.time.timestamp(),
            "interval": interval,
            "fields": FIELDS,
            "totals": sample.totals,
            "entities": entities,
            "extra": extra,
        },
    )


async def write_sample(sample: ClusterSample, interval: float) -> None:
    await async_client().set(
        key("latest", sample.slug), encode_sample(sample, interval), ex=KEEP_SECONDS
    )


async def write_status(slug: str, status: dict[str, Any]) -> None:
    await async_client().set(key("status", slug), json.dumps(status), ex=KEEP_SECONDS)


@dataclass
class Snapshot:
    """One cluster's latest status and values. ``data`` is empty before the first sample."""

    slug: str
    status: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool | None:
        value = self.status.get("ok")
        return value if isinstance(value, bool) else None

    @property
    def sampled_at(self) -> float | None:
        value = self.data.get("time")
        return float(value) if isinstance(value, int | float) else None

    def age(self) -> float | None:
        return None if self.sampled_at is None else max(0.0, time.time() - self.sampled_at)

    def rows(self, entity_type: str) -> Iterator[tuple[str, Values]]:
        for row in self.data.get("entities", {}).get(entity_type, ()):
            yield row[0], tuple(row[1:])

    def extra(self, entity_type: str, entity: str) -> dict[str, Any]:
        found = self.data.get("extra", {}).get(f"{entity_type}\x1f{entity}")
        return found if isinstance(found, dict) else {}

    def extras(self, entity_type: str) -> Iterator[tuple[str, dict[str, Any]]]:
        prefix = entity_type + "\x1f"
        for name, value in self.data.get("extra", {}).items():
            if name.startswith(prefix):
                yield name[len(prefix) :], value

    def top(
        self, entity_type: str, field_name: str, count: int
    ) -> list[tuple[str, dict[str, Any]]]:
        """The ``count`` entities with the largest known ``field_name``, largest first."""
        index = FIELDS.index(field_name)
        rows = [(e, v) for e, v in self.rows(entity_type) if v[index] is not None]
        best = heapq.nlargest(count, rows, key=lambda row: row[1][index])  # type: ignore[arg-type,return-value]
        return [(e, dict(zip(FIELDS, v, strict=True))) for e, v in best]

    def count(self, entity_type: str) -> int:
        return len(self.data.get("entities", {}).get(entity_type, ()))

    @property
    def totals(self) -> Values | None:
        totals = self.data.get("totals")
        return tuple(totals) if isinstance(totals, list) else None


def _parse(slug: str, status: bytes | str | None, data: bytes | str | None) -> Snapshot:
    return Snapshot(
        slug=slug,
        status=json.loads(status) if status else {},
        data=json.loads(data) if data else {},
    )


def read_snapshots(slugs: list[str]) -> dict[str, Snapshot]:
    """Every cluster's snapshot in one round trip (for synchronous views)."""
    if not slugs:
        return {}
    names = [key(kind, slug) for slug in slugs for kind in ("status", "latest")]
    values = sync_client().mget(names)
    return {slug: _parse(slug, values[2 * i], values[2 * i + 1]) for i, slug in enumerate(slugs)}


def read_statuses(slugs: list[str]) -> dict[str, dict[str, Any]]:
    if not slugs:
        return {}
    values = sync_client().mget([key("status", s) for s in slugs])
    return {s: json.loads(v) if v else {} for s, v in zip(slugs, values, strict=True)}


async def read_status(slug: str) -> dict[str, Any]:
    raw = await async_client().get(key("status", slug))
    return json.loads(raw) if raw else {}
