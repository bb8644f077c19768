"""A process reading Kafka consumer groups through the adapter, driven line by line.

Run by ``tests/test_cluster_kafka_stall.py`` as ``python -m tests.support.kafka_stall_child
BOOTSTRAP PREFIX COUNT TIMEOUT``: each ``read`` line on stdin reads ``COUNT`` groups
the way the metrics sampler does and the groups page of those named ``PREFIX…`` the
way the web page does, then prints one JSON line; ``sleep S`` waits; ``quit`` ends.
It is a process of its own because the failure it guards against is librdkafka
aborting the whole process.
"""

from __future__ import annotations

import asyncio
import json
import sys

from brokers.base import ClusterConfig
from brokers.kafka.adapter import KafkaBroker
from brokers.kafka.groups import group_page
from brokers.kafka.metrics import read_groups


async def main(bootstrap: str, prefix: str, count: int, seconds: float) -> None:
    broker = KafkaBroker(
        ClusterConfig(slug="stall", kind="kafka", bootstrap_servers=bootstrap, timeout=seconds)
    )
    await broker.connect()
    ids = [f"{prefix}{n}" for n in range(count)]
    while line := await asyncio.to_thread(sys.stdin.readline):
        command, _, argument = line.strip().partition(" ")
        if command == "quit":
            break
        if command == "sleep":
            await asyncio.sleep(float(argument))
        elif command == "read":
            groups, page = await asyncio.gather(
                read_groups(broker, ids), group_page(broker, per_page=count, name_filter=prefix)
            )
            answer = {
                "sampler_errors": sum(1 for g in groups.values() if g.error),
                "page_rows": len(page.groups),
                "page_errors": sum(1 for g in page.groups if g.error),
                "generation": broker.admin_generation,
            }
            print(json.dumps(answer), flush=True)
    await broker.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
