"""A Kafka cluster that stops answering for a while never takes a reading process down.

librdkafka aborts the whole process when consumer-group admin requests
(DescribeGroups, OffsetFetch) time out inside it while the broker has not
answered, and the broker then answers or is reconnected to (confluentinc/librdkafka
issue 4605). The metrics sampler and the web's groups page send such requests
by the dozen. Real 3-broker Kafka from ``ops/cluster.sh``: every broker is frozen
with SIGSTOP while a separate process (``tests/support/kafka_stall_child.py``)
reads groups through the adapter, and thawed as soon as that read has given up.
The process must report the read as failed, live on, and read every group again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition

from tests.conftest import ROOT
from tests.support import cluster as support

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(600)]

clustered_brokers = support.clustered_brokers
cluster_session = support.cluster_session

GROUPS = 40


def kafka_pids() -> list[int]:
    state = Path(os.environ.get("MQB_STATE_DIR", ROOT / "var"))
    return [
        int((state / "cluster" / f"kafka-{n}" / "kafka.pid").read_text()) for n in support.NODES
    ]


@pytest.fixture
def groups(clustered_brokers: Any) -> Iterator[str]:
    """``GROUPS`` consumer groups with committed offsets on a new topic; their prefix."""
    prefix = f"stall-{uuid.uuid4().hex[:8]}-"
    topic = f"{prefix}topic"
    support.create_topic(topic)
    admin = support.kafka_admin()
    ids = [f"{prefix}{n}" for n in range(GROUPS)]
    futures: list[Any] = []
    for gid in ids:
        request = [ConsumerGroupTopicPartitions(gid, [TopicPartition(topic, 0, 0)])]
        futures += admin.alter_consumer_group_offsets(request, request_timeout=30).values()
    for future in futures:
        future.result()
    yield prefix
    for future in admin.delete_consumer_groups(ids, request_timeout=30).values():
        future.result()
    admin.delete_topics([topic], operation_timeout=30)[topic].result()


def ask(child: subprocess.Popen[str], command: str) -> dict[str, Any]:
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(f"{command}\nread\n")
    child.stdin.flush()
    line = child.stdout.readline()
    if not line:
        child.wait(timeout=30)
        assert child.stderr is not None
        pytest.fail(
            f"the reading process died (exit {child.returncode}):\n{child.stderr.read()[-3000:]}"
        )
    answer: dict[str, Any] = json.loads(line)
    return answer


def test_group_reads_survive_a_cluster_that_stalls_and_answers_late(groups: str) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.kafka_stall_child",
            *(support.BOOTSTRAP, groups, str(GROUPS), "2"),
        ],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pids = kafka_pids()
    try:
        before = ask(child, "sleep 0")
        assert before["sampler_errors"] == 0, before
        assert (before["page_rows"], before["page_errors"]) == (GROUPS, 0), before

        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        try:
            stalled = ask(child, "sleep 0")
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGCONT)
        # The read gave up on the frozen cluster and said so for every group.
        assert stalled["sampler_errors"] == GROUPS, stalled
        assert stalled["generation"] > before["generation"], stalled

        # The brokers answer the requests given up on, and the process lives on.
        after = support.wait_until(
            lambda: (a := ask(child, "sleep 2"))["sampler_errors"] == 0 and a,
            "groups read again",
            120,
        )
        assert (after["page_rows"], after["page_errors"]) == (GROUPS, 0), after
        assert child.stdin is not None
        child.stdin.write("quit\n")
        child.stdin.flush()
        assert child.wait(timeout=60) == 0
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        if child.poll() is None:
            child.kill()
            child.wait()
