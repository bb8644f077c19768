"""A real collector sampling one RabbitMQ vhost and the test Kafka under their own slugs,
and helpers to read the lists it serves (snapshot or live) through the JSON API."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from brokers.base import ClusterConfig, Secret
from tests.settings import RUN_ID
from tests.support.metrics import base_env, collector_process, log_tail

MGMT = "http://127.0.0.1:15672"
KAFKA = "127.0.0.1:9092"
INTERVAL = 3.0
RABBIT_SLUG = f"snap-r-{RUN_ID}"
KAFKA_SLUG = f"snap-k-{RUN_ID}"


def rabbit_config(vhost: str) -> ClusterConfig:
    return ClusterConfig(
        slug=RABBIT_SLUG,
        kind="rabbitmq",
        name="Snapshot RabbitMQ",
        amqp_url=f"amqp://127.0.0.1:5672/{quote(vhost, safe='')}",
        management_url=MGMT,
        username="guest",
        password=Secret("guest"),
        timeout=4.0,
    )


def kafka_config() -> ClusterConfig:
    return ClusterConfig(
        slug=KAFKA_SLUG, kind="kafka", name="Snapshot Kafka", bootstrap_servers=KAFKA, timeout=4.0
    )


def run_collector(served_db: dict[str, str], vhost: str, tmp: Path) -> Iterator[Any]:
    """The collector process, sampling only ``vhost`` of RabbitMQ and the whole Kafka."""
    path = tmp / "clusters.toml"
    path.write_text(
        f"""
[[cluster]]
slug = "{RABBIT_SLUG}"
kind = "rabbitmq"
amqp_url = "amqp://127.0.0.1:5672/{quote(vhost, safe="")}"
management_url = "{MGMT}"
username = "guest"
password_env = "SNAP_RABBIT_PASSWORD"
timeout = 4

[[cluster]]
slug = "{KAFKA_SLUG}"
kind = "kafka"
bootstrap_servers = "{KAFKA}"
timeout = 4
"""
    )
    env = base_env(
        served_db,
        MQB_CLUSTERS_FILE=str(path),
        SNAP_RABBIT_PASSWORD="guest",
        MQB_METRICS_RABBITMQ_VHOSTS=vhost,
    )
    with collector_process(
        env, "--only", "metrics", "--interval", str(INTERVAL), log_name="snapshot-lists"
    ) as process:
        yield process


def api(client: Any, path: str, **params: str) -> dict[str, Any]:
    response = client.get(path, params)
    assert response.status_code == 200, response.content[:2000]
    data: dict[str, Any] = response.json()
    return data


def until(
    read: Callable[[], dict[str, Any]],
    wanted: Callable[[dict[str, Any]], bool],
    process: Any,
    seconds: float = 40,
) -> dict[str, Any]:
    """Read until ``wanted`` holds (the collector samples every INTERVAL seconds and
    RabbitMQ's statistics lag up to 5 s)."""
    deadline = time.monotonic() + seconds
    while True:
        data = read()
        if wanted(data):
            return data
        if time.monotonic() > deadline:
            raise AssertionError(
                f"not within {seconds} s: {str(data)[:1500]}\ncollector log:\n"
                + log_tail(process.log_path)
            )
        time.sleep(0.5)
