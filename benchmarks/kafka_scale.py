"""Many Kafka topics and consumer groups, made fast and removed again (benchmarks' setup).

Topics: CreateTopics in batches of ``TOPIC_BATCH`` (several batches in flight),
then one record per partition from one producer with many requests in flight
(librdkafka sends one partition per ProduceRequest), so every partition has a
low and a high watermark. Groups: an empty consumer group exists once it has
committed offsets, so each is made by one AlterConsumerGroupOffsets call (no
consumer joins, no rebalance), ``GROUP_CLIENTS`` admin clients side by side. Group
``n`` commits offset 0 on every partition of topics ``2n`` and ``2n + 1``
(modulo the topics made), so each group lags by one record per partition.

Adding to an existing set is cheap: ``make_topics(admin, prefix, 1000, 5000)``
makes topics 1000..4999 under the same prefix, and likewise for groups, which is
how ``kafka_lists.py`` measures 1k and then 5k topics / 10k groups in one run.

Measured on the 2-core machine, a broker of its own (ops/kafka.sh with another
MQB_STATE_DIR and ports): see the README's benchmark section for the numbers.

Command line (the bootstrap comes from ``MQB_KAFKA_BOOTSTRAP_SERVERS``, default
the shared ``127.0.0.1:9092``)::

    python benchmarks/kafka_scale.py up PREFIX --topics 5000 --groups 10000
    python benchmarks/kafka_scale.py down PREFIX --topics 5000 --groups 10000

A broker of its own with room for 15,000 partitions (every partition keeps a
file open; the default open-files limit of 20,000 leaves room for about 5,000
topics x 3 partitions on one node)::

    MQB_STATE_DIR=$PWD/var/kafka-scale MQB_KAFKA_PORT=9392 \\
      MQB_KAFKA_CONTROLLER_PORT=9393 ops/kafka.sh up
    export MQB_KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:9392
    ... (then ops/kafka.sh down with the same variables, and rm -r the state dir)
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import time
from typing import Any

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

KAFKA = os.environ.get("MQB_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
PARTITIONS = 3
TOPIC_BATCH = 100
TOPIC_WINDOW = 5
GROUP_WINDOW = 50
GROUP_CLIENTS = 6
TIMEOUT = 10


def topic_name(prefix: str, i: int) -> str:
    return f"{prefix}-t{i:05d}"


def group_name(prefix: str, i: int) -> str:
    return f"{prefix}-g{i:05d}"


def admin_client(bootstrap: str = KAFKA) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 3})


def _wait_all(futures: Any) -> None:
    for future in futures:
        future.result()


def make_topics(
    admin: AdminClient,
    prefix: str,
    start: int,
    stop: int,
    *,
    partitions: int = PARTITIONS,
    bootstrap: str = KAFKA,
) -> list[str]:
    """Topics ``start..stop-1``, each partition holding one record, all with a leader."""
    topics = [topic_name(prefix, i) for i in range(start, stop)]
    batches = [topics[i : i + TOPIC_BATCH] for i in range(0, len(topics), TOPIC_BATCH)]
    for w in range(0, len(batches), TOPIC_WINDOW):
        futures: list[Any] = []
        for batch in batches[w : w + TOPIC_WINDOW]:
            created = admin.create_topics(
                [NewTopic(t, partitions, 1) for t in batch], request_timeout=120
            )
            futures += created.values()
        _wait_all(futures)
    wanted = set(topics)
    deadline = time.monotonic() + 300
    while True:
        metadata = admin.list_topics(timeout=30).topics
        ready = {
            t
            for t in wanted
            if t in metadata
            and len(metadata[t].partitions) == partitions
            and all(p.leader >= 0 for p in metadata[t].partitions.values())
        }
        if ready == wanted:
            break
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(wanted - ready)} topics still have no leader after 300 s")
        time.sleep(1)
    # librdkafka sends one partition per ProduceRequest: thousands of them in flight
    # on one connection instead of five (idempotence is off, order does not matter).
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "linger.ms": 50,
            "max.in.flight.requests.per.connection": 1000,
            "log_level": 3,
        }
    )
    failed: list[str] = []

    def report(error: Any, message: Any) -> None:
        if error is not None:
            failed.append(str(error))

    for t in topics:
        for p in range(partitions):
            while True:
                try:
                    producer.produce(t, value=b"x", partition=p, on_delivery=report)
                    break
                except BufferError:
                    producer.poll(0.1)
        producer.poll(0)
    # A producer that has just met thousands of new partitions may wait for their
    # metadata: flush again while it makes progress.
    left = producer.flush(120)
    while left and not failed:
        before, left = left, producer.flush(60)
        if left >= before:
            break
    if left or failed:
        raise SystemExit(f"{left} records not delivered: {failed[:3]}")
    return topics


def make_groups(
    prefix: str,
    start: int,
    stop: int,
    *,
    topics: int,
    partitions: int = PARTITIONS,
    bootstrap: str = KAFKA,
) -> list[str]:
    """Groups ``start..stop-1``, each with offset 0 committed on two topics' partitions.

    One AdminClient handles its calls one after the other (about 60 a second here),
    so ``GROUP_CLIENTS`` clients commit side by side, each ``GROUP_WINDOW`` at a time.
    """
    groups = [group_name(prefix, n) for n in range(start, stop)]

    def commit(admin: AdminClient, numbers: range) -> None:
        for w in range(numbers.start, numbers.stop, GROUP_WINDOW):
            futures: list[Any] = []
            for n in range(w, min(numbers.stop, w + GROUP_WINDOW)):
                offsets = [
                    TopicPartition(topic_name(prefix, (2 * n + k) % topics), p, 0)
                    for k in range(2)
                    for p in range(partitions)
                ]
                request = [ConsumerGroupTopicPartitions(group_name(prefix, n), offsets)]
                futures += admin.alter_consumer_group_offsets(request, request_timeout=60).values()
            _wait_all(futures)

    share = -(-(stop - start) // GROUP_CLIENTS)
    chunks = [range(i, min(stop, i + share)) for i in range(start, stop, share)]
    with concurrent.futures.ThreadPoolExecutor(len(chunks) or 1) as pool:
        done = [pool.submit(commit, admin_client(bootstrap), chunk) for chunk in chunks]
        _wait_all(done)
    return groups


MISSING = {KafkaError.GROUP_ID_NOT_FOUND, KafkaError.UNKNOWN_TOPIC_OR_PART}


def remove(admin: AdminClient, topics: list[str], groups: list[str]) -> list[str]:
    """Delete the groups, then the topics; what could not be deleted, as messages
    (one that does not exist, made only in part, is not a problem)."""
    problems: list[str] = []
    for i in range(0, len(groups), 500):
        for gid, future in admin.delete_consumer_groups(
            groups[i : i + 500], request_timeout=60
        ).items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() not in MISSING:
                    problems.append(f"group {gid}: {exc}")
    for i in range(0, len(topics), 500):
        for name, future in admin.delete_topics(topics[i : i + 500], operation_timeout=120).items():
            try:
                future.result()
            except KafkaException as exc:
                if exc.args[0].code() not in MISSING:
                    problems.append(f"topic {name}: {exc}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("prefix")
    parser.add_argument("--topics", type=int, default=5000)
    parser.add_argument("--groups", type=int, default=10000)
    parser.add_argument("--partitions", type=int, default=PARTITIONS)
    args = parser.parse_args()
    admin = admin_client()
    started = time.monotonic()
    if args.action == "up":
        make_topics(admin, args.prefix, 0, args.topics, partitions=args.partitions)
        print(f"{args.topics} topics x {args.partitions} in {time.monotonic() - started:.1f} s")
        started = time.monotonic()
        make_groups(args.prefix, 0, args.groups, topics=args.topics, partitions=args.partitions)
        print(f"{args.groups} groups in {time.monotonic() - started:.1f} s")
    else:
        topics = [topic_name(args.prefix, i) for i in range(args.topics)]
        groups = [group_name(args.prefix, n) for n in range(args.groups)]
        for problem in remove(admin, topics, groups)[:20]:
            print(problem)
        print(f"removed in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
