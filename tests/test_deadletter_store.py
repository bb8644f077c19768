"""Storing captured dead letters: capture keys, redelivery claims, body cap (database only)."""

from __future__ import annotations

import collections

import pytest

from brokers.base.deadletters import CapturedLetter
from brokers.decode.metadata import amqp_failure_info, kafka_failure_info
from dashboard.core import clusters
from dashboard.deadletters.store import (
    CaptureTarget,
    RabbitMQSession,
    confirm_acked,
    load_claimable,
    store_kafka_batch,
    store_rabbitmq_batch,
)
from dashboard.models import DeadLetter, ManagedDeadLetterQueue

pytestmark = pytest.mark.django_db


@pytest.fixture
def rabbit_target(use_clusters) -> CaptureTarget:
    cluster = clusters.sync_cluster_rows()["test-rabbitmq"]
    row = ManagedDeadLetterQueue.objects.create(cluster=cluster, vhost="v", name="q.dlq")
    return CaptureTarget(row.pk, cluster.pk, "test-rabbitmq", "rabbitmq", "v", "q.dlq")


def letter(content: str, *, redelivered: bool = False, body: bytes = b"x") -> CapturedLetter:
    return CapturedLetter(
        dlq="q.dlq",
        vhost="v",
        capture_key=content,
        info=amqp_failure_info({}, {}, dlq="q.dlq"),
        headers={},
        properties={},
        body=body,
        redelivered=redelivered,
    )


def keys() -> list[str]:
    return list(DeadLetter.objects.order_by("pk").values_list("capture_key", flat=True))


def test_it_gives_byte_identical_messages_one_row_each(rabbit_target):
    result = store_rabbitmq_batch(rabbit_target, RabbitMQSession(), [letter("h")] * 3)
    assert (result.inserted, result.duplicates) == (3, 0)
    store_rabbitmq_batch(rabbit_target, RabbitMQSession(), [letter("h"), letter("other")])
    assert keys() == ["h", "h#2", "h#3", "h#4", "other"]


def test_it_numbers_past_a_deleted_first_occurrence(rabbit_target):
    store_rabbitmq_batch(rabbit_target, RabbitMQSession(), [letter("h")] * 2)
    DeadLetter.objects.filter(capture_key="h").delete()  # discarded, h#2 kept
    store_rabbitmq_batch(rabbit_target, RabbitMQSession(), [letter("h")] * 2)
    assert sorted(keys()) == ["h#2", "h#3", "h#4"]


def test_redeliveries_claim_rows_stored_before_the_last_confirmed_ack(rabbit_target):
    store_rabbitmq_batch(rabbit_target, RabbitMQSession(), [letter("a"), letter("h"), letter("h")])
    # The process died before the ack: the session after it may claim those rows...
    session = RabbitMQSession(load_claimable(rabbit_target))
    assert session.claimable == collections.Counter({"a": 1, "h": 2})
    batch = [letter("h", redelivered=True)] * 3 + [letter("a", redelivered=True)]
    result = store_rabbitmq_batch(rabbit_target, session, batch)
    # ...each at most once: a third identical redelivery was never stored, so it is new.
    assert (result.inserted, result.duplicates) == (1, 3)
    assert sorted(keys()) == ["a", "h", "h#2", "h#3"]
    # The first fresh delivery ends the claiming; the acked mark then moves.
    store_rabbitmq_batch(rabbit_target, session, [letter("b"), letter("a", redelivered=True)])
    assert not session.claimable
    assert sorted(keys()) == ["a", "a#2", "b", "h", "h#2", "h#3"]
    confirm_acked(rabbit_target)
    assert load_claimable(rabbit_target) == collections.Counter()


def test_a_failed_batch_leaves_the_session_as_it_was(rabbit_target, monkeypatch):
    from dashboard.deadletters import store

    session = RabbitMQSession(collections.Counter({"h": 1}))

    def broken(*args, **kwargs):
        raise RuntimeError("database gone")

    monkeypatch.setattr(store, "_insert", broken)
    with pytest.raises(RuntimeError):
        store_rabbitmq_batch(rabbit_target, session, [letter("x")])
    assert session.claimable == collections.Counter({"h": 1})


def test_it_keeps_long_bodies_whole_in_their_own_table(rabbit_target, settings):
    settings.MQB_DLQ_MAX_BODY = 10
    store_rabbitmq_batch(rabbit_target, RabbitMQSession(), [letter("long", body=b"0123456789abc")])
    row = DeadLetter.objects.get()
    assert (bytes(row.body), row.body_size, row.body_truncated) == (b"0123456789", 13, True)
    assert bytes(row.full_body.data) == b"0123456789abc"


def test_it_stores_kafka_records_once_by_topic_partition_offset(use_clusters):
    cluster = clusters.sync_cluster_rows()["test-kafka"]
    managed = ManagedDeadLetterQueue.objects.create(cluster=cluster, name="t-dlq")
    target = CaptureTarget(managed.pk, cluster.pk, "test-kafka", "kafka", "", "t-dlq")

    def record(offset: int) -> CapturedLetter:
        headers = [("x-original-topic", b"t"), ("x-exception", b"Bad: \x00nul")]
        return CapturedLetter(
            dlq="t-dlq",
            vhost="",
            capture_key=f"t-dlq:0:{offset}",
            info=kafka_failure_info(headers, dlq="t-dlq"),
            headers=[],
            properties={"offset": offset},
            body=b"v",
            key=b"k",
        )

    first = store_kafka_batch(target, [record(0), record(1)])
    again = store_kafka_batch(target, [record(1), record(2), record(2)])
    assert (first.inserted, again.inserted, again.duplicates) == (2, 1, 2)
    assert keys() == ["t-dlq:0:0", "t-dlq:0:1", "t-dlq:0:2"]
    row = DeadLetter.objects.first()
    assert row is not None and row.exception_message == "\ufffdnul"  # NUL is not storable text
    managed.refresh_from_db()
    assert managed.captured_count == 3
