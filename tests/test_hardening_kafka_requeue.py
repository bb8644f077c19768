"""Kafka requeue keeps what the record was: null stays null, keys keep their partition,
headers keep their order, and a record that failed again shows its newest failure.

Everything runs against the real Kafka: dead letters are produced into a
managed DLQ topic, captured by the real capture engine and sent back by the
real requeue paths (single, edit-and-requeue, bulk job, produce form). Where a
keyed record must land is computed here independently, with Kafka's Java
murmur2 (what Java and Spring producers use).
"""

from __future__ import annotations

import asyncio
import json
import struct
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from confluent_kafka import Consumer, Producer, TopicPartition

from brokers.decode.metadata import kafka_failure_info
from dashboard.core.connections import close_all
from dashboard.deadletters import requeue as service
from dashboard.deadletters import requeue_job
from dashboard.deadletters.inbox import InboxFilter, get_inbox_groups
from dashboard.jobs import control, runner
from dashboard.models import DeadLetter, Job
from tests.conftest import KAFKA
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h

pytestmark = [pytest.mark.kafka, pytest.mark.django_db(transaction=True)]

Headers = list[tuple[str, str | bytes | None]]
Seen = tuple[int, bytes | None, bytes | None, Headers]  # partition, key, value, headers
Record = tuple[bytes | None, bytes | None, Headers]  # key, value, headers


# -- Kafka's partitioner, written out from the Java client ---------------------------


def murmur2(data: bytes) -> int:
    """``org.apache.kafka.common.utils.Utils.murmur2`` as an unsigned 32-bit value."""
    mask, m, r = 0xFFFFFFFF, 0x5BD1E995, 24
    length = len(data)
    h32 = (0x9747B28C ^ length) & mask
    for i in range(length // 4):
        k = int.from_bytes(data[i * 4 : i * 4 + 4], "little")
        k = (k * m) & mask
        k ^= k >> r
        k = (k * m) & mask
        h32 = ((h32 * m) & mask) ^ k
    tail, rest = length & ~3, length % 4
    if rest == 3:
        h32 ^= data[tail + 2] << 16
    if rest >= 2:
        h32 ^= data[tail + 1] << 8
    if rest >= 1:
        h32 ^= data[tail]
        h32 = (h32 * m) & mask
    h32 ^= h32 >> 13
    h32 = (h32 * m) & mask
    return h32 ^ (h32 >> 15)


def java_partition(key: bytes, partitions: int) -> int:
    """``BuiltInPartitioner.partitionForKey``: ``toPositive(murmur2(key)) % partitions``."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def test_it_computes_murmur2_as_the_java_client_does():
    # Kafka's own UtilsTest vectors (signed Java ints).
    def signed(value: int) -> int:
        return value - (1 << 32) if value & 0x80000000 else value

    assert signed(murmur2(b"21")) == -973932308
    assert signed(murmur2(b"foobar")) == -790332482
    assert signed(murmur2(b"a-little-bit-long-string")) == -985981536
    # Where a Java producer put these keys on 3 partitions.
    assert (java_partition(b"user-2", 3), java_partition(b"cust-3", 3)) == (2, 1)


# -- helpers ----------------------------------------------------------------------------


def spring_headers(origin: str, partition: int, offset: int, n: int) -> Headers:
    return [
        ("kafka_dlt-original-topic", origin.encode()),
        ("kafka_dlt-original-partition", struct.pack(">i", partition)),
        ("kafka_dlt-original-offset", struct.pack(">q", offset)),
        ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", f"record {n} failed".encode()),
    ]


def connect_headers(
    origin: str, partition: int, offset: int, stage: str, klass: str, message: str
) -> Headers:
    prefix = "__connect.errors."
    return [
        (prefix + "topic", origin.encode()),
        (prefix + "partition", str(partition).encode()),
        (prefix + "offset", str(offset).encode()),
        (prefix + "connector.name", b"file-sink"),
        (prefix + "task.id", b"0"),
        (prefix + "stage", stage.encode()),
        (prefix + "class.name", klass.encode()),
        (prefix + "exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
        (prefix + "exception.message", message.encode()),
    ]


FIRST = ("VALUE_CONVERTER", "org.apache.kafka.connect.json.JsonConverter", "not JSON: x{")
SECOND = ("TRANSFORMATION", "org.apache.kafka.connect.transforms.Cast$Value", "cannot cast")


def produce_raw(topic: str, records: list[Record]) -> None:
    producer = Producer({"bootstrap.servers": KAFKA, "linger.ms": 5})
    for key, value, headers in records:
        producer.produce(topic, value, key=key, headers=headers, partition=0)
    assert producer.flush(15) == 0


def read_records(topic: str, expect: int) -> list[Seen]:
    """Every record of the topic from the start, with its partition, until ``expect`` came."""
    consumer = Consumer(
        {
            "bootstrap.servers": KAFKA,
            "group.id": f"read-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        count = len(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        consumer.assign([TopicPartition(topic, p, 0) for p in range(count)])
        seen: list[Seen] = []

        def seen_as(message: Any) -> Seen:
            return (message.partition(), message.key(), message.value(), message.headers() or [])

        def more() -> bool:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                seen.append(seen_as(message))
            return len(seen) >= expect

        h.wait_for(more, 30, what=f"{expect} record(s) in {topic}")
        time.sleep(0.5)  # anything more than expected would show up now
        while (message := consumer.poll(0.2)) is not None:
            if message.error() is None:
                seen.append(seen_as(message))
        return seen
    finally:
        consumer.close()


async def capture(dlq: str, records: list[Record]) -> list[Any]:
    """Produce ``records`` into the managed DLQ and capture them with the real engine."""
    before = len(await flow.rows_of(dlq))
    await sync_to_async(produce_raw)(dlq, records)
    target = await flow.manage("test-kafka", "", dlq)

    async def stored() -> bool:
        return await flow.stored_count(dlq) >= before + len(records)

    await flow.capture_until(target, stored)
    return (await flow.rows_of(dlq))[before:]


@sync_to_async
def fresh(letter: DeadLetter) -> DeadLetter:
    return DeadLetter.objects.get(pk=letter.pk)


@pytest.fixture
def topics(use_clusters, settings) -> Iterator[tuple[str, str]]:
    """An origin topic with 3 partitions and a DLQ topic, captured by a group of their own."""
    origin = h.create_topic(h.kafka_name("-orders"), partitions=3)
    dlq = h.create_topic(h.kafka_name("-dlq"))
    settings.MQB_KAFKA_CAPTURE_GROUP = f"{dlq}-group-{{slug}}"
    yield origin, dlq
    h.delete_group(settings.MQB_KAFKA_CAPTURE_GROUP.format(slug="test-kafka"))
    h.delete_topics(origin, dlq)


@pytest.fixture
def queued(monkeypatch) -> list[Job]:
    """Jobs handed to the worker; the tests run them with jobs.run_job themselves."""
    sent: list[Job] = []
    monkeypatch.setattr(control, "enqueue", sent.append)
    return sent


async def run_bulk(operator: Any, ids: list[int]) -> Job:
    job = await requeue_job.do_start_bulk_requeue(user=operator, ids=ids)
    try:
        await asyncio.to_thread(runner.run_job, job.pk, job.task_id)
    finally:
        await close_all()
    return await sync_to_async(control.get_job)(job.pk)


# -- null stays null ------------------------------------------------------------------


async def test_it_keeps_a_null_value_and_a_null_key_null_through_capture_page_and_requeue(
    topics, operator, async_client
):
    origin, dlq = topics
    tombstone, keyless, empty = await capture(
        dlq,
        [
            (b"user-9", None, spring_headers(origin, 0, 1, 1)),
            (None, None, spring_headers(origin, 1, 2, 2)),
            (b"", b"", spring_headers(origin, 2, 3, 3)),
        ],
    )
    assert (bytes(tombstone.key), tombstone.properties.get("value_null")) == (b"user-9", True)
    assert (keyless.key, keyless.properties.get("value_null")) == (None, True)
    assert (bytes(empty.key), empty.properties.get("value_null")) == (b"", None)

    await async_client.aforce_login(operator)
    page = (await async_client.get(f"/deadletters/{keyless.pk}/")).content.decode()
    assert '<pre class="body" id="letter-body"><span class="null">null</span></pre>' in page
    assert 'id="letter-key"><span class="null">null</span>' in page
    page = (await async_client.get(f"/deadletters/{empty.pk}/")).content.decode()
    assert '<pre class="body" id="letter-body"></pre>' in page
    assert 'id="letter-key"><span class="null">empty</span>' in page

    # Requeue as captured; edit-and-requeue leaving the (shown empty) body as it is.
    assert (await service.do_requeue_dead_letter(tombstone.pk, user=operator)).sent
    edited = [[k, v] for k, v in keyless.headers] + [["x-edited", "yes"]]
    answer = await async_client.post(
        f"/deadletters/{keyless.pk}/requeue",
        {"edit": "1", "body": "", "headers": json.dumps(edited)},
    )
    assert answer.status_code == 302
    assert (await fresh(keyless)).status == "requeued"
    assert (await service.do_requeue_dead_letter(empty.pk, user=operator)).sent

    seen = await sync_to_async(read_records)(origin, 3)
    by_key = {key: value for _, key, value, _ in seen}
    assert len(seen) == 3
    assert by_key == {b"user-9": None, None: None, b"": b""}
    [edited_headers] = [hs for _, key, _, hs in seen if key is None]
    assert ("x-edited", b"yes") in edited_headers


async def test_it_keeps_null_values_null_in_a_bulk_requeue(topics, operator, queued):
    origin, dlq = topics
    rows = await capture(
        dlq,
        [
            (b"user-1", None, spring_headers(origin, 0, 10, 1)),
            (None, None, spring_headers(origin, 1, 11, 2)),
            (b"user-3", b"", spring_headers(origin, 2, 12, 3)),
        ],
    )

    finished = await run_bulk(operator, [r.pk for r in rows])

    assert (finished.state, finished.result["requeued"]) == ("done", 3)
    seen = await sync_to_async(read_records)(origin, 3)
    assert sorted(((k or b""), v) for _, k, v, _ in seen) == [
        (b"", None),
        (b"user-1", None),
        (b"user-3", b""),
    ]
    assert [k for _, k, v, _ in seen if v is None and k is None] == [None]


# -- partitions and headers -----------------------------------------------------------

KEYS = [b"user-2", b"cust-3"] + [f"order-{i}".encode() for i in range(10)]
HEADERS: Headers = [
    ("trace", b"a"),
    ("x-tenant", b"acme"),
    ("trace", b"b"),
    ("trace", None),
    ("x-tenant", b"acme"),
]


def keyed_and_keyless(origin: str) -> list[Record]:
    keyed: list[Record] = [
        (key, f'{{"n": {n}}}'.encode(), HEADERS + spring_headers(origin, 0, n, n))
        for n, key in enumerate(KEYS)
    ]
    # Keyless records remember their partition; partition 7 no longer exists.
    keyless: list[Record] = [
        (None, f'{{"k": {p}}}'.encode(), HEADERS + spring_headers(origin, p, 100 + i, i))
        for i, p in enumerate([2, 1, 2, 1, 7])
    ]
    return keyed + keyless


def check_placement(seen: list[Seen]) -> None:
    assert len(seen) == len(KEYS) + 5
    for partition, key, value, headers in seen:
        if key is not None:
            assert partition == java_partition(key, 3), key
        elif value != b'{"k": 7}':
            assert partition == json.loads(value or b"")["k"], value
        assert headers[: len(HEADERS)] == HEADERS
        assert headers[-1] == ("x-mqboard-requeue-count", b"1")


async def test_it_requeues_keyed_records_to_their_java_partition_and_keyless_to_their_own(
    topics, operator
):
    origin, dlq = topics
    rows = await capture(dlq, keyed_and_keyless(origin))

    for row in rows:
        assert (await service.do_requeue_dead_letter(row.pk, user=operator)).sent

    check_placement(await sync_to_async(read_records)(origin, len(rows)))


async def test_a_bulk_requeue_places_and_keeps_headers_as_a_single_requeue_does(
    topics, operator, queued
):
    origin, dlq = topics
    rows = await capture(dlq, keyed_and_keyless(origin))

    finished = await run_bulk(operator, [r.pk for r in rows])

    assert (finished.state, finished.result["requeued"]) == ("done", len(rows))
    check_placement(await sync_to_async(read_records)(origin, len(rows)))


def test_the_produce_form_puts_a_key_where_a_java_producer_would(use_clusters, client, operator):
    origin = h.create_topic(h.kafka_name("-orders"), partitions=3)
    try:
        client.force_login(operator)
        for key in KEYS:
            answer = client.post(
                f"/api/clusters/test-kafka/kafka/topics/{origin}/messages",
                {"key": key.decode(), "value": "x"},
                content_type="application/json",
            )
            assert answer.status_code == 201, answer.content
            assert answer.json()["partition"] == java_partition(key, 3), key
    finally:
        h.delete_topics(origin)


# -- the newest failure wins ------------------------------------------------------------


async def test_it_reads_the_newest_of_repeated_connect_and_spring_headers(
    topics, operator, async_client
):
    origin, dlq = topics
    connect_twice = connect_headers(origin, 1, 4, *FIRST) + connect_headers(origin, 0, 11, *SECOND)
    spring_twice = [
        *spring_headers(origin, 1, 4, 1),
        ("kafka_dlt-original-topic", origin.encode()),
        ("kafka_dlt-original-partition", struct.pack(">i", 0)),
        ("kafka_dlt-original-offset", struct.pack(">q", 11)),
        ("kafka_dlt-exception-fqcn", b"java.lang.NumberFormatException"),
        ("kafka_dlt-exception-message", b'For input string: "x"'),
    ]
    connect_row, spring_row = await capture(
        dlq, [(b"c-1", b"x{", connect_twice), (b"s-1", b"x", spring_twice)]
    )

    assert (connect_row.origin_partition, connect_row.origin_offset) == (0, 11)
    assert connect_row.reason == "transformation"
    assert connect_row.exception_message == "cannot cast"
    assert connect_row.failure_details["component"] == SECOND[1]
    newest = kafka_failure_info(connect_headers(origin, 0, 11, *SECOND), dlq=dlq)
    oldest = kafka_failure_info(connect_headers(origin, 1, 4, *FIRST), dlq=dlq)
    assert connect_row.fingerprint == newest.fingerprint != oldest.fingerprint
    [earlier] = connect_row.failure_details["history"]
    assert (earlier["reason"], earlier["component"], earlier["partition"], earlier["offset"]) == (
        "value_converter",
        FIRST[1],
        1,
        4,
    )
    assert earlier["fingerprint"] == oldest.fingerprint

    assert (spring_row.origin_partition, spring_row.origin_offset) == (0, 11)
    assert spring_row.exception_class == "java.lang.NumberFormatException"
    [earlier] = spring_row.failure_details["history"]
    assert (earlier["exception_class"], earlier["offset"]) == (
        "java.lang.IllegalStateException",
        4,
    )

    groups = await sync_to_async(lambda: list(get_inbox_groups(InboxFilter(dlq=dlq)).object_list))()
    assert {g["fingerprint"] for g in groups} == {connect_row.fingerprint, spring_row.fingerprint}
    assert oldest.fingerprint not in {g["fingerprint"] for g in groups}

    await async_client.aforce_login(operator)
    page = (await async_client.get(f"/deadletters/{connect_row.pk}/")).content.decode()
    facts, history = page.split('id="letter-history"', 1)
    assert "transformation" in facts and "Cast$Value" in facts and "partition 0" in facts
    history = history.split("</table>", 1)[0]
    assert "value_converter" in history and "JsonConverter" in history
    assert "partition 1 · offset 4" in history and "not JSON: x{" in history
    detail = (await async_client.get(f"/api/deadletters/letters/{connect_row.pk}")).json()
    assert detail["failure_details"]["history"][0]["reason"] == "value_converter"


async def test_a_letter_that_failed_again_for_another_reason_is_filed_under_the_new_one(
    topics, operator
):
    origin, dlq = topics
    [first] = await capture(dlq, [(b"cust-3", b"x{", connect_headers(origin, 1, 4, *FIRST))])
    assert first.reason == "value_converter"
    assert (await service.do_requeue_dead_letter(first.pk, user=operator)).sent

    # The sink reads it back from its origin and fails again, later in its pipeline:
    # Kafka Connect appends a fresh set of error headers after the old ones.
    [(partition, key, value, headers)] = await sync_to_async(read_records)(origin, 1)
    assert partition == java_partition(b"cust-3", 3) == 1
    [second] = await capture(
        dlq, [(key, value, headers + connect_headers(origin, partition, 11, *SECOND))]
    )

    assert (second.reason, second.origin_partition, second.origin_offset) == (
        "transformation",
        1,
        11,
    )
    assert second.fingerprint != first.fingerprint
    assert second.failure_details["history"][0]["fingerprint"] == first.fingerprint
    old = await fresh(first)
    assert (old.status, old.failed_again_as_id) == ("failed_again", second.pk)
