"""Spring Kafka dead letters: the cause's class and message, the wrapper kept apart.

Header values are bytes as ``DeadLetterPublishingRecoverer`` writes them: strings in
UTF-8, the original partition as a 4-byte and the offset as an 8-byte big-endian number.
"""

from __future__ import annotations

import struct

from brokers.decode.fingerprint import fingerprint, normalise_message
from brokers.decode.metadata import kafka_failure_info

WRAPPER = b"org.springframework.kafka.listener.ListenerExecutionFailedException"
METHOD = (
    b"Listener method 'public void com.acme.OrderListener.onOrder("
    b"org.apache.kafka.clients.consumer.ConsumerRecord<java.lang.String, java.lang.String>)'"
    b" threw exception"
)


def spring_headers(
    message: bytes, *, cause: bytes = b"com.acme.OrderRejected", **extra: bytes
) -> list[tuple[str, bytes]]:
    headers = [
        ("kafka_dlt-original-topic", b"real.orders"),
        ("kafka_dlt-original-partition", struct.pack(">i", 2)),
        ("kafka_dlt-original-offset", struct.pack(">q", 8)),
        ("kafka_dlt-original-timestamp", struct.pack(">q", 1_767_000_000_000)),
        ("kafka_dlt-original-timestamp-type", b"CreateTime"),
        ("kafka_dlt-original-consumer-group", b"orders"),
        ("kafka_dlt-exception-fqcn", WRAPPER),
        ("kafka_dlt-exception-cause-fqcn", cause),
        ("kafka_dlt-exception-message", message),
    ]
    headers += [
        (k.replace("_", "-").replace("kafka-dlt", "kafka_dlt"), v) for k, v in extra.items()
    ]
    return headers


def test_the_cause_message_is_the_text_after_the_wrappers_prefix() -> None:
    wrapper = METHOD + b"; order 8 rejected: no stock record for SKU-X6"
    info = kafka_failure_info(spring_headers(wrapper), dlq="real.orders-dlt")
    assert info.exception_class == "com.acme.OrderRejected"
    assert info.exception_message == "order 8 rejected: no stock record for SKU-X6"
    assert info.wrapper_class == WRAPPER.decode()
    assert info.wrapper_message == wrapper.decode()
    assert (info.origin_topic, info.origin_partition, info.origin_offset) == ("real.orders", 2, 8)


def test_letters_of_one_cause_group_together_whatever_the_wrapper_said() -> None:
    infos = [
        kafka_failure_info(
            spring_headers(METHOD + f"; order {n} rejected: no stock record for SKU-X{n}".encode()),
            dlq="real.orders-dlt",
        )
        for n in (6, 20, 27)
    ]
    assert len({i.fingerprint for i in infos}) == 1


def test_a_cause_message_header_wins() -> None:
    headers = spring_headers(
        METHOD + b"; something else", kafka_dlt_exception_cause_message=b"order 9 rejected"
    )
    assert kafka_failure_info(headers).exception_message == "order 9 rejected"


def test_the_stack_traces_caused_by_line_when_the_wrapper_says_nothing_more() -> None:
    trace = (
        WRAPPER + b": " + METHOD + b"\n\tat org.springframework.kafka.listener."
        b"KafkaMessageListenerContainer$ListenerConsumer.decorateException(Unknown Source)\n"
        b"Caused by: com.acme.OrderRejected: order 8 rejected: no stock\n"
        b"\tat com.acme.OrderListener.onOrder(OrderListener.java:31)\n"
    )
    headers = spring_headers(METHOD, kafka_dlt_exception_stacktrace=trace)
    info = kafka_failure_info(headers)
    assert info.exception_class == "com.acme.OrderRejected"
    assert info.exception_message == "order 8 rejected: no stock"
    assert info.wrapper_message == METHOD.decode()


def test_no_cause_keeps_the_exception_as_it_is() -> None:
    headers = [
        ("kafka_dlt-original-topic", b"real.orders"),
        (
            "kafka_dlt-exception-fqcn",
            b"org.springframework.kafka.support.serializer.DeserializationException",
        ),
        ("kafka_dlt-exception-message", b"failed to deserialize; nested: bad byte"),
    ]
    info = kafka_failure_info(headers)
    assert info.exception_class.endswith("DeserializationException")
    assert info.exception_message == "failed to deserialize; nested: bad byte"
    assert (info.wrapper_class, info.wrapper_message) == ("", "")


def test_a_cause_thrown_directly_is_not_taken_for_a_wrapper() -> None:
    # Not wrapped (a custom error handler): the message is the exception's own.
    headers = spring_headers(b"threw exception; but not a wrapper", cause=b"java.io.IOException")
    headers = [
        (k, b"com.acme.Failure" if k == "kafka_dlt-exception-fqcn" else v) for k, v in headers
    ]
    info = kafka_failure_info(headers)
    assert info.exception_class == "com.acme.Failure"
    assert info.exception_message == "threw exception; but not a wrapper"


def test_ids_after_a_letter_group_together_with_the_issue_strings() -> None:
    messages = [f"no stock record for SKU-X{n}" for n in (6, 20, 27)]
    assert {normalise_message(m) for m in messages} == {"no stock record for SKU-X<n>"}
    keys = {
        fingerprint(origin="kafka:topic:real.orders", reason="", exception_class="OrderRejected",
                    exception_message=m)
        for m in messages
    }  # fmt: skip
    assert len(keys) == 1


def test_the_requeue_count_header_is_read() -> None:
    headers = [*spring_headers(METHOD + b"; x"), ("x-mqboard-requeue-count", b"3")]
    assert kafka_failure_info(headers).requeue_count == 3
    assert kafka_failure_info(spring_headers(METHOD + b"; x")).requeue_count == 0
    garbled = [*spring_headers(METHOD + b"; x"), ("x-mqboard-requeue-count", b"\xff\x00")]
    assert kafka_failure_info(garbled).requeue_count == 0
