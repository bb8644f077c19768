"""What a moved copy looks like: the original's properties and headers, plus our counter."""

from __future__ import annotations

from uuid import uuid4

import pamqp.frame
from pamqp.commands import Basic

from brokers.rabbitmq.move.model import ORIGINAL_USER_ID_HEADER, REQUEUE_COUNT_HEADER


def copy_properties(properties: Basic.Properties, login: str) -> Basic.Properties:
    """The delivered properties, reused: requeue count + 1, a message id, a safe user_id."""
    headers = dict(properties.headers or {})
    previous = headers.get(REQUEUE_COUNT_HEADER)
    headers[REQUEUE_COUNT_HEADER] = (previous if isinstance(previous, int) else 0) + 1
    if properties.user_id and properties.user_id != login:
        # RabbitMQ refuses a publish whose user_id is not the connection's login.
        headers[ORIGINAL_USER_ID_HEADER] = properties.user_id
        properties.user_id = None
    if not properties.message_id:
        # aiormq matches a basic.return to its publish by message id.
        properties.message_id = uuid4().hex
    properties.headers = headers
    return properties


def ack_frame(channel: int, tag: int, *, multiple: bool) -> bytes:
    return pamqp.frame.marshal(Basic.Ack(delivery_tag=tag, multiple=multiple), channel)
