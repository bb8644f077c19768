"""The tail's per-viewer limiter (pure logic, a fake clock)."""

from __future__ import annotations

import itertools

from brokers.base.tail import RateLimiter


def admitted_times(rate: int, offered_per_second: int, seconds: float) -> list[float]:
    now = [0.0]
    limiter = RateLimiter(rate, clock=lambda: now[0])
    times = []
    for i in range(round(offered_per_second * seconds)):
        now[0] = i / offered_per_second
        if limiter.allow():
            times.append(now[0])
    return times


def test_it_admits_at_most_the_rate_in_any_second_and_spaces_them():
    times = admitted_times(rate=20, offered_per_second=5000, seconds=10)

    assert 190 <= len(times) <= 200
    for i, start in enumerate(times):
        in_window = [t for t in times[i:] if t - start < 1.0]
        assert len(in_window) <= 20
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.95 / 20 - 1e-9


def test_it_lets_everything_through_below_the_rate():
    assert len(admitted_times(rate=20, offered_per_second=10, seconds=5)) == 50


def test_wait_time_says_when_the_next_one_is_admitted():
    now = [0.0]
    limiter = RateLimiter(2, clock=lambda: now[0])
    assert limiter.wait_time() == 0.0
    assert limiter.allow()
    assert not limiter.allow()
    assert abs(limiter.wait_time() - 0.475) < 1e-9
    now[0] = 0.5
    assert limiter.allow()
    assert abs(limiter.wait_time() - 0.5) < 1e-9  # the window: two within the last second
