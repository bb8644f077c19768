"""A chart's history: 1 h from raw samples, 24 h per minute, 7 d per hour.

Each range reads one tier, with two index range scans on (cluster,
entity_type, entity, resolution, time): the cluster's heartbeats in the range
and the entity's rows from the start of the range's first period. The cost
depends on the range, not on how many months of samples the table holds.

Series are columnar (``t`` and one list per field) as uPlot wants them.
Values are carried forward from the entity's last row to each heartbeat (rows
are only written on change). Where the collector did not sample (heartbeats
further apart than 2.5 steps) a null point is inserted, so charts show a gap,
never a line drawn across missing data.
"""

from __future__ import annotations

import itertools
import statistics
import time as clock
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from brokers.base.metrics import FIELDS, Values
from dashboard.metrics.fields import INT_FIELDS
from dashboard.metrics.tiers import RANGES, Range, floor
from dashboard.models import Cluster, ThroughputSample

GAP_FACTOR = 2.5


class UnknownCluster(LookupError):
    pass


@dataclass(frozen=True)
class History:
    cluster: str
    entity_type: str
    entity: str
    range: Range
    step: float
    times: list[float]
    series: dict[str, list[Any]]
    generated_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "entity_type": self.entity_type,
            "entity": self.entity,
            "range": self.range.name,
            "resolution": self.range.tier.name,
            "step": self.step,
            "generated_at": self.generated_at,
            "fields": list(FIELDS),
            "t": self.times,
            **self.series,
        }


def _rows(queryset: Any) -> list[tuple[Any, ...]]:
    return list(queryset.order_by("time").values_list("time", *FIELDS))


def _step(times: list[float], tier_bucket: int) -> float:
    if tier_bucket:
        return float(tier_bucket)
    deltas = [b - a for a, b in itertools.pairwise(times) if b > a]
    return max(0.5, statistics.median(deltas)) if deltas else 5.0


def carry_forward(
    beats: list[float], rows: list[tuple[float, Values]], period: int
) -> list[Values | None]:
    """The entity's value at each heartbeat: its last row at or before it in the same period."""
    found: list[Values | None] = []
    index, current, current_time = 0, None, None
    for beat in beats:
        while index < len(rows) and rows[index][0] <= beat + 1e-6:
            current_time, current = rows[index]
            index += 1
        same_period = current_time is not None and floor(current_time, period) == floor(
            beat, period
        )
        found.append(current if same_period else None)
    return found


def get_history(
    slug: str, entity_type: str, entity: str, range_name: str, *, now: float | None = None
) -> History:
    """The series of one entity over one range; raises UnknownCluster or KeyError."""
    chosen = RANGES[range_name]
    tier = chosen.tier
    cluster_id = Cluster.objects.filter(slug=slug).values_list("pk", flat=True).first()
    if cluster_id is None:
        raise UnknownCluster(slug)
    end = now if now is not None else clock.time()
    start = end - chosen.seconds
    base = ThroughputSample.objects.filter(cluster_id=cluster_id, resolution=tier.name)
    beats_raw = _rows(
        base.filter(
            entity_type="cluster",
            entity=slug,
            time__gte=datetime.fromtimestamp(start, UTC),
            time__lte=datetime.fromtimestamp(end, UTC),
        )
    )
    beats = [row[0].timestamp() for row in beats_raw]
    if entity_type == "cluster":
        values: list[Values | None] = [tuple(row[1:]) for row in beats_raw]
    else:
        rows = _rows(
            base.filter(
                entity_type=entity_type,
                entity=entity,
                time__gte=datetime.fromtimestamp(floor(start, tier.period), UTC),
                time__lte=datetime.fromtimestamp(end, UTC),
            )
        )
        values = carry_forward(beats, [(r[0].timestamp(), tuple(r[1:])) for r in rows], tier.period)
    step = _step(beats, tier.bucket)
    times: list[float] = []
    columns: dict[str, list[Any]] = {name: [] for name in FIELDS}
    previous: float | None = None
    for beat, value in zip(beats, values, strict=True):
        if previous is not None and beat - previous > GAP_FACTOR * step:
            # The collector was not sampling: a null point breaks the line.
            times.append(previous + step)
            for name in FIELDS:
                columns[name].append(None)
        times.append(beat)
        for name, v in zip(FIELDS, value or (None,) * len(FIELDS), strict=True):
            columns[name].append(_json_number(name, v))
        previous = beat
    return History(slug, entity_type, entity, chosen, step, times, columns, end)


def _json_number(name: str, value: Any) -> Any:
    if value is None:
        return None
    return int(value) if name in INT_FIELDS else float(value)
