"""Failure metadata of dead letters: every header convention, garbled ones, fingerprints."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from decimal import Decimal

from brokers.decode.fingerprint import normalise_message
from brokers.decode.metadata import amqp_failure_info, kafka_failure_info
from brokers.decode.values import from_json, kafka_headers_from_json, kafka_headers_to_json, to_json

T1 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
T2 = datetime(2025, 3, 1, 10, 5, 0, tzinfo=UTC)


def x_death(**overrides: object) -> dict[str, object]:
    entry: dict[str, object] = {
        "count": 2,
        "reason": "rejected",
        "queue": "orders",
        "time": T2,
        "exchange": "events",
        "routing-keys": ["order.created"],
    }
    entry.update(overrides)
    return entry


# -- RabbitMQ --------------------------------------------------------------------


def test_it_reads_x_death_newest_first():
    headers = {
        "x-death": [
            x_death(),
            x_death(queue="orders.retry", reason="expired", count=1, time=T1, exchange="retry"),
        ],
        "x-first-death-queue": "orders.retry",
        "x-first-death-reason": "expired",
        "x-first-death-exchange": "retry",
    }
    info = amqp_failure_info(headers, {"message_id": "m-1"}, dlq="orders.dlq")
    assert info.conventions == ("x-death",)
    assert info.origin_queue == "orders"
    assert info.origin_exchange == "events"
    assert info.origin_routing_keys == ("order.created",)
    assert info.reason == "rejected"
    assert info.attempts == 2
    assert info.first_failed_at == T1
    assert info.last_failed_at == T2
    assert info.message_id == "m-1"
    assert info.origin_label == "queue 'orders' (exchange 'events', key 'order.created')"
    assert info.notes == ()


def test_it_reads_x_death_from_the_http_api_with_integer_times():
    headers = {"x-death": [x_death(time=int(T2.timestamp()))]}
    info = amqp_failure_info(headers, dlq="dlq")
    assert info.last_failed_at == T2


def test_it_falls_back_to_x_first_death_when_x_death_is_garbled():
    headers = {
        "x-death": "not a list",
        "x-first-death-queue": "payments",
        "x-first-death-reason": "expired",
        "x-first-death-exchange": "",
    }
    info = amqp_failure_info(headers, dlq="dlq")
    assert info.conventions == ("x-first-death",)
    assert info.origin_queue == "payments"
    assert info.origin_exchange == ""
    assert info.reason == "expired"
    assert info.attempts == 1
    assert info.first_failed_at is None
    assert any("x-death header is not a list" in note for note in info.notes)


def test_it_survives_x_death_entries_that_are_junk():
    headers = {"x-death": [{"count": "many", "time": "yesterday"}, 42, None]}
    info = amqp_failure_info(headers, dlq="jobs.dlq")
    assert info.conventions == ("unknown",)
    assert not info.origin_known
    assert info.origin_label == "unknown origin"
    assert info.notes


def test_it_notes_x_death_without_times():
    info = amqp_failure_info({"x-death": [x_death(time=None)]}, dlq="dlq")
    assert info.origin_queue == "orders"
    assert info.last_failed_at is None
    assert "x-death entries carry no time" in info.notes


def test_it_labels_a_message_without_any_convention_unknown_origin():
    info = amqp_failure_info({"x-tenant": "acme"}, {"message_id": "abc"}, dlq="dlq")
    assert info.conventions == ("unknown",)
    assert info.origin_label == "unknown origin"
    assert info.message_id == "abc"
    assert info.fingerprint


def test_it_reads_celery_task_headers_and_counts_retries():
    headers = {
        "task": "billing.charge",
        "id": "0f0e9d1c-aaaa-bbbb-cccc-000000000001",
        "retries": 3,
        "x-death": [x_death(count=1)],
    }
    info = amqp_failure_info(headers, {}, dlq="dlq")
    assert info.conventions == ("x-death", "celery")
    assert info.task_name == "billing.charge"
    assert info.attempts == 4
    assert info.message_id == "0f0e9d1c-aaaa-bbbb-cccc-000000000001"


def test_it_takes_a_celery_exception_from_a_result_backend_answer():
    headers = {"task": "billing.charge", "id": "t-1", "retries": 0}
    result = {
        "status": "FAILURE",
        "result": {"exc_type": "CardDeclined", "exc_module": "billing.errors",
                   "exc_message": ["card 4242 declined"]},
    }  # fmt: skip
    info = amqp_failure_info(headers, {}, dlq="dlq", celery_result=result)
    assert info.conventions == ("celery",)
    assert info.exception_class == "billing.errors.CardDeclined"
    assert info.exception_message == "card 4242 declined"
    assert (
        amqp_failure_info(
            headers, {}, dlq="dlq", celery_result={"status": "SUCCESS"}
        ).exception_class
        == ""
    )


# -- Kafka -----------------------------------------------------------------------

SPRING_WRAPPER = b"org.springframework.kafka.listener.ListenerExecutionFailedException"


def test_it_reads_spring_headers_with_binary_integers():
    headers = [
        ("kafka_dlt-original-topic", b"orders"),
        ("kafka_dlt-original-partition", struct.pack(">i", 3)),
        ("kafka_dlt-original-offset", struct.pack(">q", 2**40 + 7)),
        ("kafka_dlt-original-timestamp", struct.pack(">q", 1_700_000_000_000)),
        ("kafka_dlt-exception-fqcn", SPRING_WRAPPER),
        ("kafka_dlt-exception-cause-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", b"order 991 has no customer"),
        ("kafka_deliveryAttempt", struct.pack(">i", 3)),
    ]  # fmt: skip
    info = kafka_failure_info(headers, dlq="orders.DLT", timestamp=T2)
    assert info.conventions == ("spring",)
    assert (info.origin_topic, info.origin_partition, info.origin_offset) == (
        "orders",
        3,
        2**40 + 7,
    )
    assert info.exception_class == "java.lang.IllegalStateException"
    assert info.exception_message == "order 991 has no customer"
    assert info.attempts == 3
    assert info.last_failed_at == T2
    assert info.origin_label == f"topic 'orders' partition 3 offset {2**40 + 7}"


def test_it_reads_spring_integers_written_as_text():
    headers = [("kafka_dlt-original-topic", b"t"), ("kafka_dlt-original-partition", b"12"),
               ("kafka_dlt-original-offset", b"345")]  # fmt: skip
    info = kafka_failure_info(headers, dlq="t.DLT")
    assert (info.origin_partition, info.origin_offset) == (12, 345)


def test_it_notes_a_garbled_spring_partition():
    headers = [("kafka_dlt-original-topic", b"t"), ("kafka_dlt-original-partition", b"\x01\x02")]
    info = kafka_failure_info(headers, dlq="t.DLT")
    assert info.origin_topic == "t"
    assert info.origin_partition is None
    assert any("kafka_dlt-original-partition" in note for note in info.notes)


def test_it_reads_kafka_connect_headers():
    headers = [
        ("__connect.errors.topic", b"pageviews"),
        ("__connect.errors.partition", b"2"),
        ("__connect.errors.offset", b"1234"),
        ("__connect.errors.stage", b"VALUE_CONVERTER"),
        ("__connect.errors.exception.class.name", b"org.apache.kafka.connect.errors.DataException"),
        ("__connect.errors.exception.message", b"Converting byte[] to Kafka Connect data failed"),
    ]  # fmt: skip
    info = kafka_failure_info(headers, dlq="dlq-pageviews")
    assert info.conventions == ("connect",)
    # "1234" is four bytes: Connect writes text, so it is not read as a binary int.
    assert (info.origin_topic, info.origin_partition, info.origin_offset) == ("pageviews", 2, 1234)
    assert info.reason == "value_converter"
    assert info.exception_class == "org.apache.kafka.connect.errors.DataException"


def test_it_reads_x_original_headers_and_splits_x_exception():
    headers = [
        ("x-original-topic", b"user-events"),
        ("x-original-partition", b"5"),
        ("x-original-offset", b"77"),
        ("x-exception", b"InvalidPayload: field 'email' missing in event 5521"),
    ]
    info = kafka_failure_info(headers, dlq="user-events-dlq")
    assert info.conventions == ("x-original",)
    assert (info.origin_topic, info.origin_partition, info.origin_offset) == ("user-events", 5, 77)
    assert info.exception_class == "InvalidPayload"
    assert info.exception_message == "field 'email' missing in event 5521"


def test_it_says_which_convention_won_when_several_are_present():
    headers = [("x-original-topic", b"a"), ("kafka_dlt-original-topic", b"b")]
    info = kafka_failure_info(headers, dlq="b.DLT")
    assert info.origin_topic == "b"
    assert info.conventions == ("spring", "x-original")
    assert any("several conventions" in note for note in info.notes)


def test_it_labels_a_kafka_record_without_headers_unknown_origin():
    info = kafka_failure_info(None, dlq="orders-dlq", timestamp=T1)
    assert info.conventions == ("unknown",)
    assert info.origin_label == "unknown origin"
    assert info.first_failed_at == info.last_failed_at == T1


def test_it_reads_a_message_id_header_on_kafka():
    info = kafka_failure_info([("message-id", b"abc-1")], dlq="x-dlq")
    assert info.message_id == "abc-1"


# -- fingerprints ----------------------------------------------------------------


def test_it_strips_ids_numbers_and_hex_from_exception_messages():
    text = (
        "user 8d2e7c1a-1111-4222-8333-944455556666 (bob@example.com) failed at "
        "2025-03-01T10:00:00Z from 10.1.2.3:5672 after 3 tries, object 0x7f3a9c at deadbeef1234"
    )
    assert normalise_message(text) == (
        "user <uuid> (<email>) failed at <time> from <ip> after <n> tries, object <hex> at <hex>"
    )


def test_it_gives_one_fingerprint_to_failures_that_differ_only_in_ids():
    def info(order: int, offset: int):
        return kafka_failure_info(
            [
                ("kafka_dlt-original-topic", b"orders"),
                ("kafka_dlt-original-offset", struct.pack(">q", offset)),
                ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
                ("kafka_dlt-exception-message", f"order {order} has no customer".encode()),
            ],
            dlq="orders.DLT",
        )

    assert info(1, 10).fingerprint == info(2, 99).fingerprint


def fingerprint_of(**overrides) -> str:
    return amqp_failure_info({"x-death": [x_death(**overrides)]}, dlq="dlq").fingerprint


def test_it_separates_fingerprints_by_origin_reason_and_exception():
    same = fingerprint_of()
    # Routing keys often hold ids: they do not split a group; the queue does.
    assert fingerprint_of(**{"routing-keys": ["order.12345.created"]}) == same
    assert fingerprint_of(queue="payments") != same
    assert fingerprint_of(reason="expired") != same
    celery = {"x-death": [x_death()], "task": "a.b", "id": "1"}
    assert amqp_failure_info(celery, dlq="dlq").fingerprint != same


def test_it_keeps_fingerprints_stable_across_runs_and_times():
    # A change here splits every existing group: bump fingerprint.VERSION on purpose.
    assert fingerprint_of() == "00cdf094437367dfc184917eee1c7004"
    assert fingerprint_of(time=T1, count=9) == fingerprint_of()


# -- stored values ------------------------------------------------------------------


def test_it_stores_amqp_values_as_reversible_json():
    value = {
        "text": "ok",
        "nul": "a\x00b",
        "bytes": bytearray(b"\x00\xff"),
        "decimal": Decimal("1.50"),
        "time": T1,
        "list": [1, 2.5, None, True],
        "nested": {"$looks-like-a-tag": 1},
    }
    encoded = to_json(value)
    assert encoded["bytes"] == {"$bytes": "AP8="}
    assert from_json(encoded) == value


def test_it_stores_kafka_headers_as_reversible_json_in_order():
    headers = [("a", b"text"), ("bin", struct.pack(">i", 3)), ("a", None), ("bad", b"\xff\xfe")]
    encoded = kafka_headers_to_json(headers)
    assert encoded[0] == ["a", "text"]
    assert encoded[1] == ["bin", {"$bytes": "AAAAAw=="}]
    assert kafka_headers_from_json(encoded) == headers
