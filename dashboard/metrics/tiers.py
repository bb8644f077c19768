"""The three tiers of history and what each guarantees to readers.

Every tier stores, per cluster, a heartbeat row (the cluster's own entity) for
each bucket it has data for, and per entity a row when its value changed, plus
one at its first bucket of every *period* (raw: the minute; minute: the hour;
hour: the day). So the value of an entity at a heartbeat is the last row at
or before it within the same period; no row in that period means the entity
did not exist then. Readers never look further back than one period.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    name: str
    bucket: int
    """seconds per bucket (raw: 0, samples are not bucketed)"""
    period: int
    """every live entity has a row in every period that has a heartbeat"""


RAW = Tier("raw", 0, 60)
MINUTE = Tier("minute", 60, 3600)
HOUR = Tier("hour", 3600, 86400)
TIERS = {t.name: t for t in (RAW, MINUTE, HOUR)}


@dataclass(frozen=True)
class Range:
    name: str
    seconds: int
    tier: Tier


RANGES = {
    "1h": Range("1h", 3600, RAW),
    "24h": Range("24h", 86400, MINUTE),
    "7d": Range("7d", 7 * 86400, HOUR),
}


def floor(epoch: float, seconds: int) -> float:
    return epoch - (epoch % seconds)
