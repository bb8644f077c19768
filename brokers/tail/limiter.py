"""At most N events in any one-second window, spaced at least 1/N seconds apart.

A token bucket of capacity N lets 2N through across a window boundary (a full
bucket at the end of one second, refilled in the next); "at most N messages per
second" is meant literally here, so this keeps the times of the last N
admissions and admits another only once the oldest is a second old. Events are
also spaced by 1/N: a burst of N at once followed by the next burst a second
later would, after network jitter, reach a browser as up to 2N within a second.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

WINDOW = 1.0


class RateLimiter:
    def __init__(self, rate: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = max(1, int(rate))
        self._clock = clock
        self._admitted: deque[float] = deque(maxlen=self.rate)
        # A little under 1/N, so that a steady N per second is not held back by clock jitter.
        self.gap = 0.95 * WINDOW / self.rate

    def allow(self) -> bool:
        """Admit one event now if the window has room (and count it)."""
        now = self._clock()
        if self._admitted and now - self._admitted[-1] < self.gap:
            return False
        if len(self._admitted) == self.rate and now - self._admitted[0] < WINDOW:
            return False
        self._admitted.append(now)
        return True

    def wait_time(self) -> float:
        """Seconds until :meth:`allow` would admit an event (0 if now)."""
        if not self._admitted:
            return 0.0
        now = self._clock()
        wait = self._admitted[-1] + self.gap - now
        if len(self._admitted) == self.rate:
            wait = max(wait, self._admitted[0] + WINDOW - now)
        return max(0.0, wait)
