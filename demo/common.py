"""Small helpers every side of the workload shares: pacing, backoff, quiet logging, counters.

A demo left running for hours against a broker that comes and goes must not
fill its log with tracebacks, so repeated errors are logged once per window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter


class Pacer:
    """Spreads events evenly at ``rate`` per second, without bursts after a stall."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = time.monotonic()

    def delay(self) -> float:
        """Seconds to wait before the next event (and book that event)."""
        now = time.monotonic()
        if self._next < now - 1.0:
            self._next = now
        wait = max(0.0, self._next - now)
        self._next += self.interval
        return wait


class Backoff:
    """Exponential retry delay: 1, 2, 4 ... ``cap`` seconds; ``reset()`` after a success."""

    def __init__(self, first: float = 1.0, cap: float = 30.0) -> None:
        self.first = first
        self.cap = cap
        self._current = first

    def next(self) -> float:
        delay = self._current
        self._current = min(self._current * 2, self.cap)
        return delay

    def reset(self) -> None:
        self._current = self.first


class Throttled:
    """Logs a given message key at most once per ``window`` seconds, counting the rest."""

    def __init__(self, logger: logging.Logger, window: float = 30.0) -> None:
        self.logger = logger
        self.window = window
        self._last: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def log(self, level: int, key: str, msg: str, *args: object) -> None:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.window:
                self._suppressed[key] += 1
                return
            self._last[key] = now
            suppressed = self._suppressed.pop(key, 0)
        if suppressed:
            msg += f" (and {suppressed} more like it)"
        self.logger.log(level, msg, *args)


class Stats:
    """Thread-safe counters, summarised in one log line now and then."""

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def incr(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self._counts[name] += amount

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def summary(self) -> str:
        counts = self.snapshot()
        return " ".join(f"{key}={counts[key]}" for key in sorted(counts)) or "nothing yet"
