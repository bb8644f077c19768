"""Collector failover: two collectors, the leader killed with ``kill -9`` again and again.

For each database (a scratch PostgreSQL database on the project cluster, with the
advisory-lock lease; a SQLite file with the Redis lease) and each sample interval
(1 s and the default 5 s), two real ``manage.py collect`` processes run on that
database while dead letters flow into a managed RabbitMQ DLQ and a managed Kafka
DLQ topic (40/s each) and an alert rule fires on a deep queue
(``tests/support/collectors.py`` builds all of it). ``--kills`` times, at a random
moment of the sample cycle, the leader is killed with SIGKILL and a new standby is
started in its place, so two collectors always run (each kill waits for the
standby's first heartbeat: a process takes seconds to start on a busy machine).

Measured, in sample intervals: ``takeover`` = death to the first sample by the new
leader (the sample's own time, read from the stored rows), and ``max_gap`` = the
largest gap between consecutive samples over the whole run (kills included). The
takeover in two parts, in seconds (medians): ``lease_s`` = death to the new leader's
token (the lease row's ``since``), ``first_sample_s`` = that token to its first sample.
``duplicated`` = rows beyond one per dead letter, ``lost`` = dead letters with no row
(every id published is checked once the flow stops).

Usage: .venv/bin/python benchmarks/failover.py [--kills 5] [--intervals 1,5]
       [--databases postgres,sqlite]
Last line: RESULT takeover_intervals=<median> takeover_max_intervals=<max>
max_gap_intervals=<max> duplicated=<n> lost=<n> kills=<n> and the same per database
and interval (``postgres_1s_takeover=<median>`` ... ``postgres_1s_lease_s=<median>``
``postgres_1s_first_sample_s=<median>``).
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import signal
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")

import django  # noqa: E402

django.setup()

from tests.support.collectors import (  # noqa: E402
    DeadLetterFlow,
    all_stored,
    lease_row,
    lease_since,
    members,
    prepare,
    sample_times,
    stored_ids,
    wait_for,
    with_signal,
)

MGMT = "http://127.0.0.1:15672"
GUEST = ("guest", "guest")
VHOST = f"mqb-bench-failover-{uuid.uuid4().hex[:8]}"


def vhost(action: str) -> None:
    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
        path = VHOST.replace("/", "%2F")
        if action == "create":
            http.put(f"/api/vhosts/{path}").raise_for_status()
            http.put(
                f"/api/permissions/{path}/guest",
                json={"configure": ".*", "write": ".*", "read": ".*"},
            ).raise_for_status()
        else:
            http.delete(f"/api/vhosts/{path}")


def gaps(times: list[float]) -> float:
    return max((b - a for a, b in itertools.pairwise(times)), default=0.0)


def first_sample_after(url: str, token: int, killed: float) -> tuple[float, float]:
    """When a newer token was taken after ``killed``, and the time of the first sample
    taken after ``killed`` (once that token leads)."""
    wait_for(lambda: lease_row(url)[0] > token, timeout=60, what="a new leader")
    since = lease_since(url)
    after: list[float] = wait_for(
        lambda: [t for t in sample_times(url) if t > killed], timeout=60, what="a new sample"
    )
    return since, after[0]


def run_one(
    database: str, interval: float, kills: int, rng: random.Random
) -> tuple[dict[str, float], list[float]]:
    workdir = Path(tempfile.mkdtemp(prefix=f"mqb-bench-failover-{database}-"))
    stand = prepare(database, VHOST, workdir, sys.executable)
    takeovers: list[float] = []
    leases: list[float] = []
    firsts: list[float] = []
    try:
        with DeadLetterFlow(stand) as flow:
            names = iter(range(1000))
            running = [stand.start(f"c{next(names)}", interval)]
            wait_for(lambda: lease_row(stand.url)[1] == running[0].pid, what="a leader")
            running.append(stand.start(f"c{next(names)}", interval))
            for _ in range(kills):
                wait_for(lambda: len(sample_times(stand.url)) >= 3, timeout=60, what="samples")
                # A process takes seconds to start on a busy machine: kill only once the
                # standby runs (its heartbeat row is there).
                wait_for(lambda: running[-1].pid in [p for p, _ in members(stand.url)],
                         timeout=60, what="the standby")  # fmt: skip
                time.sleep(2 * interval + rng.uniform(0, interval))
                token, pid = lease_row(stand.url)
                victim = next(p for p in running if p.pid == pid)
                with_signal(victim, signal.SIGKILL)
                killed = time.time()
                victim.wait(10)
                running.remove(victim)
                running.append(stand.start(f"c{next(names)}", interval))
                since, first = first_sample_after(stand.url, token, killed)
                takeovers.append((first - killed) / interval)
                leases.append(since - killed)
                firsts.append(first - since)
                print(f"{database} {interval:g}s: takeover {takeovers[-1]:.2f} intervals"
                      f" (lease after {leases[-1]:.2f} s, first sample {firsts[-1]:.2f} s later)",
                      flush=True)  # fmt: skip
            time.sleep(2 * interval)
            flow.stop()
            wait_for(lambda: all_stored(stand, flow), timeout=120, what="every dead letter")
            time.sleep(interval)
            rabbit, kafka = stored_ids(stand.url)
            published = set(flow.rabbit_ids) | set(flow.kafka_ids)
            stored = rabbit + kafka
        max_gap = gaps(sample_times(stand.url)) / interval
    finally:
        stand.stop_all()
        stand.clean_brokers()
    summary = {
        "takeover": statistics.median(takeovers),
        "takeover_max": max(takeovers),
        "lease_s": statistics.median(leases),
        "first_sample_s": statistics.median(firsts),
        "max_gap": max_gap,
        "duplicated": len(stored) - len(set(stored)),
        "lost": len(published - set(stored)),
        "letters": len(published),
    }
    return summary, takeovers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--intervals", default="1,5")
    parser.add_argument("--databases", default="postgres,sqlite")
    args = parser.parse_args()
    rng = random.Random()
    vhost("create")
    results: dict[tuple[str, float], dict[str, float]] = {}
    every: list[float] = []
    try:
        for database in args.databases.split(","):
            for interval in [float(i) for i in args.intervals.split(",")]:
                results[database, interval], takeovers = run_one(
                    database, interval, args.kills, rng
                )
                every += takeovers
    finally:
        vhost("delete")
    parts = []
    for (database, interval), r in results.items():
        key = f"{database}_{interval:g}s"
        parts.append(
            f"{key}_takeover={r['takeover']:.2f} {key}_takeover_max={r['takeover_max']:.2f}"
            f" {key}_max_gap={r['max_gap']:.2f} {key}_letters={r['letters']}"
            f" {key}_lease_s={r['lease_s']:.2f} {key}_first_sample_s={r['first_sample_s']:.2f}"
        )
        print(f"{key}: {r}", flush=True)
    load = os.getloadavg()[0]
    print(
        f"RESULT takeover_intervals={statistics.median(every):.2f}"
        f" takeover_max_intervals={max(every):.2f}"
        f" max_gap_intervals={max(r['max_gap'] for r in results.values()):.2f}"
        f" duplicated={sum(int(r['duplicated']) for r in results.values())}"
        f" lost={sum(int(r['lost']) for r in results.values())}"
        f" kills={len(every)} {' '.join(parts)} load={load:.1f}"
    )


if __name__ == "__main__":
    main()
