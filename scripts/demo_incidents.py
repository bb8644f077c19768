"""Incidents for the demo's alert rules: every ``--every`` seconds, for ``--last`` seconds.

``make demo`` runs it beside the workload so that the rules ``manage.py seed_alerts``
adds fire and resolve within a minute, on the demo's own names (``DEMO_PREFIX``):

* a burst of ``--burst`` poison user events published to ``events``: the workload's own
  consumer rejects them into ``dlq`` (with a genuine ``x-death``), over the arrivals rule;
* a stuck member joins the Kafka group ``user-events-processor``: it takes its share of
  the partitions, reads and never commits, so the group's lag in seconds grows; when it
  leaves, the workload's consumer takes the partitions back from the committed offsets
  (nothing is skipped) and catches up;
* ``task-queue`` loses its consumers: the queue is deleted and declared again with the
  same arguments (the broker cancels the workload's consumers; its publishes keep
  routing), and after ``--last`` seconds the workload's connection is closed through the
  management API, so that it reconnects and consumes again. The few tasks in the queue
  at that moment are lost: demo traffic.

RabbitMQ is driven through its management HTTP API (``DEMO_MANAGEMENT_URL``, default
``http://127.0.0.1:15672``, with the user and password of ``DEMO_AMQP_URL``). SIGINT or
SIGTERM stops it; a broker that is away costs one log line per incident.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from demo import payloads
from demo.topology import (
    APP_ID,
    DEFAULT_AMQP_URL,
    DEFAULT_BOOTSTRAP,
    Names,
    dead_letter_arguments,
)

log = logging.getLogger("demo.incidents")


class Rabbit:
    """The few management API calls the incidents need."""

    def __init__(self, amqp_url: str, management_url: str) -> None:
        parts = urlsplit(amqp_url)
        self.vhost = quote(unquote(parts.path[1:]) or "/", safe="")
        self.http = httpx.Client(
            base_url=management_url,
            auth=(unquote(parts.username or "guest"), unquote(parts.password or "guest")),
            timeout=5,
        )

    def publish_poison(self, exchange: str, count: int, rng: random.Random) -> None:
        for _ in range(count):
            event = payloads.user_event(rng, "user.created", 1.0)  # always fails its check
            body = {
                "properties": {"content_type": "application/json", "app_id": APP_ID},
                "routing_key": "user.created",
                "payload": json.dumps(event),
                "payload_encoding": "string",
            }
            path = f"/api/exchanges/{self.vhost}/{quote(exchange, safe='')}/publish"
            self.http.post(path, json=body).raise_for_status()

    def drop_consumers(self, queue: str, arguments: dict[str, Any]) -> None:
        path = f"/api/queues/{self.vhost}/{quote(queue, safe='')}"
        self.http.delete(path).raise_for_status()
        self.http.put(path, json={"durable": True, "arguments": arguments}).raise_for_status()

    def reconnect_workload(self, connection_name: str) -> int:
        closed = 0
        for connection in self.http.get("/api/connections").json():
            props = connection.get("client_properties") or {}
            if props.get("connection_name") == connection_name:
                name = quote(connection["name"], safe="")
                self.http.delete(f"/api/connections/{name}").raise_for_status()
                closed += 1
        return closed


def stuck_member(bootstrap: str, group: str, topic: str, seconds: float) -> None:
    """A group member that reads its partitions and commits nothing for ``seconds``."""
    from confluent_kafka import Consumer

    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "client.id": "demo-incidents",
            "enable.auto.commit": False,
            "auto.offset.reset": "latest",
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            consumer.poll(0.5)
    finally:
        consumer.close()


def incident(
    options: argparse.Namespace, rabbit: Rabbit, names: Names, stop: threading.Event
) -> None:
    rng = random.Random()  # noqa: S311 (demo payloads, not secrets)
    kafka = threading.Thread(
        target=stuck_member,
        args=(options.bootstrap, names.kafka_group, names.kafka_user_events, options.last),
        daemon=True,
    )
    kafka.start()
    try:
        rabbit.publish_poison(names.events_exchange, options.burst, rng)
        rabbit.drop_consumers(names.task_queue, dead_letter_arguments(names))
        log.info(
            "incident: %d poison events, %s without consumers, a stuck member in %s",
            options.burst,
            names.task_queue,
            names.kafka_group,
        )
    except httpx.HTTPError as exc:
        log.warning("incident: RabbitMQ management API: %s", type(exc).__name__)
    stop.wait(options.last)
    try:
        closed = rabbit.reconnect_workload(f"{APP_ID} {names.prefix}".strip())
        log.info("incident over: %d workload connection(s) closed to reconnect", closed)
    except httpx.HTTPError as exc:
        log.warning("incident over: RabbitMQ management API: %s", type(exc).__name__)
    kafka.join(options.last + 10)


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--every", type=float, default=float(env("DEMO_INCIDENT_EVERY", "90")))
    parser.add_argument("--last", type=float, default=30.0)
    parser.add_argument("--burst", type=int, default=80)
    parser.add_argument("--first-after", type=float, default=20.0)
    parser.add_argument("--amqp-url", default=env("DEMO_AMQP_URL", DEFAULT_AMQP_URL))
    parser.add_argument(
        "--management-url", default=env("DEMO_MANAGEMENT_URL", "http://127.0.0.1:15672")
    )
    parser.add_argument("--bootstrap", default=env("DEMO_KAFKA_BOOTSTRAP", DEFAULT_BOOTSTRAP))
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request otherwise
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    names = Names(env("DEMO_PREFIX", ""))
    rabbit = Rabbit(options.amqp_url, options.management_url)
    if stop.wait(options.first_after):
        return 0
    while not stop.is_set():
        started = time.monotonic()
        incident(options, rabbit, names, stop)
        stop.wait(max(0.0, options.every - (time.monotonic() - started)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
