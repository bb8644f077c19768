"""The properties a RabbitMQ requeue publishes, built directly, are aio-pika's.

``amqp_properties`` skips ``aio_pika.Message`` on the bulk path; each letter
here must give the same ``Basic.Properties`` as ``amqp_message(...).properties``
(a message id made up only where the letter has none), and what aio-pika
refuses must still be refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from brokers.base.deadletters import REQUEUE_COUNT_HEADER
from brokers.rabbitmq.deadletters.requeue import AmqpLetter, amqp_message, amqp_properties

MOMENT = "2026-12-07T06:00:00+00:00"
PROPERTIES: list[dict[str, Any]] = [
    {},
    {"message_id": "m-1", "content_type": "application/json", "delivery_mode": 2},
    {"message_id": "m-2", "delivery_mode": 0, "priority": 0, "correlation_id": ""},
    {"message_id": 7, "correlation_id": 42, "reply_to": "amq.rabbitmq.reply-to", "priority": 9,
     "type": "order.created", "app_id": "shop", "content_encoding": "gzip", "delivery_mode": 1},
    {"message_id": "m-3", "timestamp": {"$timestamp": MOMENT},
     "user_id": "guest", "expiration": "60000", "priority": "high", "delivery_mode": "2"},
    {"message_id": "m-4", "delivery_mode": True, "priority": True, "timestamp": "not a time"},
]  # fmt: skip
HEADERS: list[Any] = [
    {},
    {"x-death": [{"count": 1, "reason": "rejected", "time": {"$timestamp": MOMENT}}],
     REQUEUE_COUNT_HEADER: 4, "bin": {"$bytes": "AAE="}, "nul": {"$string": "YQBi"}},
    {"$table": {"$odd": "one key that starts with $"}},
    {"$bytes": "AAE="},
]  # fmt: skip


@pytest.mark.parametrize("properties", PROPERTIES)
@pytest.mark.parametrize("headers", HEADERS)
def test_it_builds_what_aio_pika_builds(properties: dict[str, Any], headers: Any) -> None:
    letter = AmqpLetter("events", "order.created", b"body", properties, headers)
    built, expected = amqp_properties(letter), amqp_message(letter).properties
    if not expected.message_id:
        assert built.message_id and len(built.message_id) == 32
        expected.message_id = built.message_id
    assert built == expected
    assert built.headers is not headers  # the stored letter is left as it was


def test_a_delivery_mode_aio_pika_refuses_is_refused() -> None:
    letter = AmqpLetter("", "q", b"", {"delivery_mode": 3}, {})
    with pytest.raises(ValueError):
        amqp_message(letter)
    with pytest.raises(ValueError):
        amqp_properties(letter)
