"""Rates from counters that only grow: Kafka end offsets and committed offsets.

A rate is the growth over a sliding window of observations (at least
``window`` seconds when there is that much history), summed per partition so
that a partition that appears, disappears or restarts from 0 (a recreated
topic) never shows up as a burst or a negative rate.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable, Mapping
from typing import Any

Counters = Mapping[Any, int]


class CounterRates:
    def __init__(self, window: float = 5.0, min_span: float = 0.5) -> None:
        self.window = window
        self.min_span = min_span
        self._seen: dict[Hashable, deque[tuple[float, Counters]]] = {}

    def observe(self, key: Hashable, now: float, counters: Counters) -> float | None:
        """Record ``counters`` for ``key`` at ``now`` (monotonic seconds); the rate per second."""
        history = self._seen.get(key)
        if history is None:
            history = self._seen[key] = deque()
        history.append((now, counters))
        # Keep the newest observation that is at least a window old as the base.
        while len(history) > 2 and now - history[1][0] >= self.window:
            history.popleft()
        base_time, base = history[0]
        span = now - base_time
        if span < self.min_span:
            return None
        return self._rate(base, counters, span)

    @staticmethod
    def _rate(base: Counters, counters: Counters, span: float) -> float:
        if base == counters:
            return 0.0  # nothing moved (most groups, most samples): one comparison in C
        grown = 0
        for part, value in counters.items():
            before = base.get(part)
            if before is not None and value > before:
                grown += value - before
        return grown / span

    def forget_except(self, keys: set[Hashable]) -> None:
        """Drop the history of entities that no longer exist."""
        for key in [k for k in self._seen if k not in keys]:
            del self._seen[key]
