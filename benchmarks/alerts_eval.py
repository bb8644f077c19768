"""Alert evaluation cost: 1,000 rules over one sample of 10,000 queues, 1,000 topics and
200 consumer groups, side by side with matching every rule against every name.

Setup: a temporary SQLite database (migrated), 1,000 enabled rules (depth rules with a
glob each, lag rules with a regular expression each, a few exact names), one channel,
and one sample built in memory. Nothing fires: this is the steady state, every sample.

Measured, medians of CPU time (``time.process_time``), 7 runs (the reference 3):
- ``evaluate``: the collector's per-sample call (rules read and their index checked,
  every point matched, active alerts read, nothing written), after a first call that
  compiles the rules and fills the per-name memo (warm-up, reported apart);
- reference: the same matching done naively, each rule's compiled RE2 pattern against
  every entity name of its kind (what the index saves).

``eval_cpu_share`` is the evaluation's CPU seconds over the sample interval (5 s): the
share of one core alerts add to the collector. Prints
``RESULT eval_ms=<n> first_ms=<n> naive_ms=<n> vs_naive=<evaluate / naive> eval_cpu_share=<n>``.
Run: ``.venv/bin/python benchmarks/alerts_eval.py`` (about a minute).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = 7
NAIVE_RUNS = 3  # seconds each: the point is the order of magnitude
INTERVAL = 5.0


def main() -> None:
    tmp = tempfile.mkdtemp(prefix="mqb-alerts-bench-")
    db = f"sqlite:///{tmp}/db.sqlite3"
    os.environ.update(DATABASE_URL=db, DJANGO_SETTINGS_MODULE="dashboard.settings")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--no-input", "-v0"],
        cwd=ROOT,
        env=os.environ,
        check=True,
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from brokers.base.metrics import ClusterSample, Point, queue_entity, values_of
    from dashboard.alerts.engine import entity_name, evaluate
    from dashboard.alerts.rules import get_rulebook
    from dashboard.deadletters.policies.matching import compile_pattern
    from dashboard.models import AlertChannel, AlertRule, Cluster

    cluster = Cluster.objects.create(slug="bench", kind="rabbitmq", name="Bench")
    channel = AlertChannel.objects.create(name="bench", url_env="BENCH_URL")
    rules = [
        AlertRule(
            name=f"depth {i}",
            kind="queue_depth",
            syntax="glob",
            pattern=f"svc{i}.*",
            threshold=10**9,
        )
        for i in range(800)
    ]
    rules += [
        AlertRule(
            name=f"lag {i}", kind="group_lag", syntax="regex", pattern=f"^team{i}-", threshold=10**9
        )
        for i in range(150)
    ]
    rules += [
        AlertRule(name=f"exact {i}", kind="queue_depth", syntax="exact", pattern=f"svc{i}.q{i}")
        for i in range(50)
    ]
    for rule in rules:
        rule.threshold = 10**9
    AlertRule.objects.bulk_create(rules)
    through = AlertRule.channels.through
    through.objects.bulk_create(
        through(alertrule_id=pk, alertchannel_id=channel.pk)
        for pk in AlertRule.objects.values_list("pk", flat=True)
    )
    points = [
        Point("queue", queue_entity("/", f"svc{i % 1000}.q{i}"), values_of(depth=i, consumers=1))
        for i in range(10_000)
    ]
    points += [Point("topic", f"events.{i}", values_of(depth=i)) for i in range(1_000)]
    points += [Point("group", f"team{i % 300}-g{i}", values_of(lag=i)) for i in range(200)]
    sample = ClusterSample(
        slug="bench",
        kind="rabbitmq",
        time=datetime.now(UTC),
        totals=values_of(),
        points=tuple(points),
        consumers=None,
        seconds=1.0,
    )

    started = time.process_time()
    evaluate(cluster.pk, cluster.slug, sample)
    first = time.process_time() - started
    timings = []
    for _ in range(RUNS):
        started = time.process_time()
        outcome = evaluate(cluster.pk, cluster.slug, sample)
        timings.append(time.process_time() - started)
        assert outcome.started == 0
    book = get_rulebook()
    assert len(book.rules) == 1000

    compiled = [
        (r.kind, r.syntax, r.pattern, compile_pattern("pattern", r.syntax, r.pattern))
        for r in AlertRule.objects.exclude(syntax="exact")
    ]
    names = {
        "queue_depth": [entity_name(p.entity_type, p.entity) for p in points[:11_000]],
        "group_lag": [p.entity for p in points[11_000:]],
    }
    naive = []
    for _ in range(NAIVE_RUNS):
        started = time.process_time()
        hits = 0
        for kind, _syntax, _source, pattern in compiled:
            assert pattern is not None
            for name in names[kind]:
                hits += pattern.matches(name)
        naive.append(time.process_time() - started)
    median, naive_median = statistics.median(timings), statistics.median(naive)
    load = os.getloadavg()[0]
    print(f"evaluate: {[round(t * 1000, 1) for t in timings]} ms; load {load:.2f}")
    print(f"naive:    {[round(t * 1000, 1) for t in naive]} ms")
    print(
        f"RESULT eval_ms={median * 1000:.1f} first_ms={first * 1000:.1f}"
        f" naive_ms={naive_median * 1000:.1f} vs_naive={median / naive_median:.4f}"
        f" eval_cpu_share={median / INTERVAL:.4f} load={load:.2f}"
    )


if __name__ == "__main__":
    main()
