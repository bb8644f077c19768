"""Alert detection latency on real brokers, and the evaluation cost, in sample intervals.

Setup (removed at the end): a RabbitMQ vhost of its own, one queue per RabbitMQ trial,
one one-partition topic and consumer group per Kafka trial (the group committed at the
end, so its lag is 0), a temporary SQLite database, a Redis prefix of its own, one rule
per trial notifying a webhook channel, a local HTTP receiver in this process, and a real
``manage.py collect --only metrics --interval <interval>``.

A trial makes a condition true at ``t0`` and waits for the firing notification's request
at the receiver (``t1``); the rules alternate ``for`` 0 and ``for`` ``--for`` seconds:

* RabbitMQ: a ``queue_depth > 0`` rule; one message published to the empty queue
  (``t0``: just before the publish request);
* Kafka: a ``group_lag > 0`` rule; one record produced (``t0``: just before producing).

``detect`` is ``t1 - (t0 + for)`` over the interval. The reference side, in the same
trial: when the broker itself first shows the condition to a client polling it every
50 ms (the queue's depth in the management API, which RabbitMQ refreshes every 5 s by
default; the group's lag from Kafka's offsets, at once). ``after_broker`` is ``t1`` minus
that moment (minus ``for`` when the broker showed it before ``for`` ran out): what the
collector, engine, outbox and sender add on top of what the broker lets anyone see.

Cost: ``benchmarks/alerts_eval.py`` (1,000 rules over one synthetic sample of 10,000
queues, 1,000 topics and 200 groups; its steady-state median CPU per evaluation) is run
as is; ``eval_cpu_share`` is that CPU over the default 5 s interval (the share of one
core alerts add to the collector), ``eval_cpu_share_at_interval`` over this run's
interval.

Prints ``RESULT detect_p99_intervals=<n> detect_p50_intervals=<n>
after_broker_p50_intervals=<n> eval_cpu_share=<n> eval_cpu_share_at_interval=<n>
load=<1-min load>``. p99 of a few dozen trials is close to their maximum.
Run: ``.venv/bin/python benchmarks/alerts_latency.py [--trials 16] [--interval 1]``
(about three minutes, plus a minute of ``alerts_eval``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
MGMT = "http://127.0.0.1:15672"
KAFKA = "127.0.0.1:9092"
DEFAULT_INTERVAL = 5.0


class Receiver:
    """A local webhook receiver: the arrival time of each firing notification, by entity."""

    def __init__(self) -> None:
        self.firing: dict[str, float] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                at = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                message = json.loads(body)
                # One message per rule and cluster: its firing section lists the alerts.
                with receiver.lock:
                    for item in message.get("firing", ()):
                        if item.get("event") == "firing":
                            receiver.firing.setdefault(item["alert"]["entity"], at)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, entity: str, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if entity in self.firing:
                    return self.firing[entity]
            time.sleep(0.01)
        raise TimeoutError(f"no firing notification for {entity} in {timeout} s")


def poll_until(check: Callable[[], bool], timeout: float, every: float = 0.05) -> float:
    """The time ``check`` first holds (polling), or +inf."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.time()
        time.sleep(every)
    return float("inf")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(share * (len(ordered) - 1))))
    return ordered[rank]


@contextlib.contextmanager
def brokers(vhost: str, prefix: str, rabbit_trials: int, kafka_trials: int) -> Iterator[Any]:
    from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

    http = httpx.Client(base_url=MGMT, auth=("guest", "guest"), timeout=10)
    admin = AdminClient({"bootstrap.servers": KAFKA})
    topics = [f"{prefix}t{i}" for i in range(kafka_trials)]
    groups = [f"{prefix}g{i}" for i in range(kafka_trials)]
    try:
        http.put(f"/api/vhosts/{quote(vhost, safe='')}").raise_for_status()
        http.put(
            f"/api/permissions/{quote(vhost, safe='')}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
        for i in range(rabbit_trials):
            path = f"/api/queues/{quote(vhost, safe='')}/q{i}"
            http.put(path, json={"durable": False}).raise_for_status()
        for future in admin.create_topics([NewTopic(t, 1, 1) for t in topics]).values():
            future.result(timeout=30)
        for topic, group in zip(topics, groups, strict=True):
            request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0, 0)])]
            admin.alter_consumer_group_offsets(request)[group].result(timeout=30)
        yield http, topics, groups
    finally:
        with contextlib.suppress(Exception):
            http.delete(f"/api/vhosts/{quote(vhost, safe='')}")
        with contextlib.suppress(Exception):
            for future in admin.delete_consumer_groups(groups).values():
                future.result(timeout=30)
        with contextlib.suppress(Exception):
            for future in admin.delete_topics(topics).values():
                future.result(timeout=30)
        http.close()


def eval_cost() -> float:
    """Median CPU seconds per evaluation, from ``benchmarks/alerts_eval.py``'s RESULT."""
    done = subprocess.run(
        [PYTHON, str(ROOT / "benchmarks" / "alerts_eval.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    found = re.search(r"^RESULT .*\beval_ms=([0-9.]+)", done.stdout, re.MULTILINE)
    if found is None:
        raise RuntimeError(f"alerts_eval.py gave no RESULT:\n{done.stdout}\n{done.stderr}")
    return float(found.group(1)) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=16, help="half RabbitMQ, half Kafka")
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--for", dest="for_seconds", type=float, default=2.0)
    options = parser.parse_args()
    interval = options.interval
    run = uuid.uuid4().hex[:8]
    vhost, prefix = f"alerts-latency-{run}", f"alerts-latency-{run}-"
    rabbit_trials = options.trials // 2
    kafka_trials = options.trials - rabbit_trials
    tmp = tempfile.mkdtemp(prefix="mqb-alerts-latency-")
    clusters = Path(tmp) / "clusters.toml"
    clusters.write_text(
        f"""
[[cluster]]
slug = "lat-rabbit"
kind = "rabbitmq"
amqp_url = "amqp://127.0.0.1:5672/{quote(vhost, safe="")}"
management_url = "{MGMT}"
username = "guest"
password_env = "LATENCY_RABBIT_PASSWORD"
timeout = 4

[[cluster]]
slug = "lat-kafka"
kind = "kafka"
bootstrap_servers = "{KAFKA}"
"""
    )
    receiver = Receiver()
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite:///{tmp}/db.sqlite3",
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "MQB_CLUSTERS_FILE": str(clusters),
        "LATENCY_RABBIT_PASSWORD": "guest",
        "MQB_METRICS_RABBITMQ_VHOSTS": vhost,
        "MQB_METRICS_KAFKA_TOPICS": f"^{re.escape(prefix)}",
        "MQB_CHANNEL_PREFIX": f"alerts-latency-{run}",
        "MQB_LATENCY_HOOK_URL": receiver.url,
    }
    subprocess.run(
        [PYTHON, "manage.py", "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True
    )
    for name in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "MQB_CLUSTERS_FILE"):
        os.environ[name] = env[name]
    os.environ.update(LATENCY_RABBIT_PASSWORD="guest", MQB_CHANNEL_PREFIX=env["MQB_CHANNEL_PREFIX"])
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from confluent_kafka import Producer

    from dashboard.core.clusters import sync_cluster_rows
    from dashboard.models import AlertChannel, AlertRule

    sync_cluster_rows()
    channel = AlertChannel.objects.create(name="latency", url_env="MQB_LATENCY_HOOK_URL")

    def rule(name: str, kind: str, cluster: str, pattern: str, for_seconds: float) -> None:
        made = AlertRule.objects.create(
            name=name,
            kind=kind,
            cluster=sync_cluster_rows()[cluster],
            syntax="exact",
            pattern=pattern,
            threshold=0,
            for_seconds=for_seconds,
        )
        made.channels.add(channel)

    plan: list[tuple[str, int, float]] = []
    for i in range(options.trials):
        side, index = ("rabbit", i // 2) if i % 2 == 0 else ("kafka", i // 2)
        if index >= (rabbit_trials if side == "rabbit" else kafka_trials):
            continue
        for_seconds = 0.0 if (i // 2) % 2 == 0 else options.for_seconds
        plan.append((side, index, for_seconds))

    results: list[dict[str, float]] = []
    log_path = Path(tmp) / "collector.log"
    with brokers(vhost, prefix, rabbit_trials, kafka_trials) as (http, topics, groups):
        for side, index, for_seconds in plan:
            if side == "rabbit":
                rule(f"depth q{index}", "queue_depth", "lat-rabbit", f"q{index}", for_seconds)
            else:
                rule(f"lag {groups[index]}", "group_lag", "lat-kafka", groups[index], for_seconds)
        producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 0})
        with open(log_path, "wb") as log:
            collector = subprocess.Popen(
                [PYTHON, "manage.py", "collect", "--only", "metrics", "--interval", str(interval)],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                time.sleep(max(5.0, 5 * interval))  # first samples, rules compiled
                for side, index, for_seconds in plan:
                    if side == "rabbit":
                        queue_path = f"/api/queues/{quote(vhost, safe='')}/q{index}"
                        entity = f"{quote(vhost, safe='')}/q{index}"
                        t0 = time.time()
                        http.post(
                            f"/api/exchanges/{quote(vhost, safe='')}/amq.default/publish",
                            json={
                                "properties": {},
                                "routing_key": f"q{index}",
                                "payload": "x",
                                "payload_encoding": "string",
                            },
                        ).raise_for_status()

                        def depth_shown(path: str = queue_path) -> bool:
                            return int(http.get(path).json().get("messages") or 0) > 0

                        shown: Callable[[], bool] = depth_shown

                    else:
                        entity = groups[index]
                        t0 = time.time()
                        producer.produce(topics[index], b"x", partition=0)
                        producer.flush(10)

                        shown = lambda: True  # noqa: E731 (the end offset moves with the produce)

                    seen = poll_until(shown, 60)
                    t1 = receiver.wait(entity, 60 + for_seconds)
                    due = t0 + for_seconds
                    results.append(
                        {
                            "rabbit": 1.0 if side == "rabbit" else 0.0,
                            "for": for_seconds,
                            "detect": (t1 - due) / interval,
                            "after_broker": (t1 - max(seen, due)) / interval,
                            "broker": (seen - t0) / interval,
                        }
                    )
                    print(
                        f"{side:6} for={for_seconds:g}s detect={(t1 - due):.2f}s"
                        f" broker_showed_after={(seen - t0):.2f}s",
                        flush=True,
                    )
            except TimeoutError as exc:
                print(f"{exc}; collector log:\n{log_path.read_text()[-3000:]}", file=sys.stderr)
                raise
            finally:
                collector.terminate()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    collector.wait(20)
    detect = [r["detect"] for r in results]
    after = [r["after_broker"] for r in results]
    sides = {"rabbitmq": [r for r in results if r["rabbit"]]}
    sides["kafka"] = [r for r in results if not r["rabbit"]]
    for name, rows in sides.items():
        if rows:
            print(
                f"{name}: detect median {statistics.median(r['detect'] for r in rows):.2f}"
                f" max {max(r['detect'] for r in rows):.2f} intervals; broker showed it after"
                f" median {statistics.median(r['broker'] for r in rows):.2f} intervals"
            )
    cost = eval_cost()
    load = os.getloadavg()[0]
    print(
        f"RESULT detect_p99_intervals={percentile(detect, 0.99):.2f}"
        f" detect_p50_intervals={statistics.median(detect):.2f}"
        f" after_broker_p50_intervals={statistics.median(after):.2f}"
        f" eval_cpu_share={cost / DEFAULT_INTERVAL:.4f}"
        f" eval_cpu_share_at_interval={cost / interval:.4f}"
        f" interval={interval:g} trials={len(results)} load={load:.2f}"
    )


if __name__ == "__main__":
    main()
