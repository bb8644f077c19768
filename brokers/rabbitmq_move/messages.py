"""What a moved copy looks like: the original's properties and headers, plus our counter."""

from __future__ import annotations

import struct
from typing import Any
from uuid import uuid4

import pamqp.frame
from pamqp.commands import Basic
from pamqp.header import ContentHeader

from brokers.rabbitmq_move.model import ORIGINAL_USER_ID_HEADER, REQUEUE_COUNT_HEADER

BODY_FRAME = struct.Struct(">BHI")
FRAME_END = b"\xce"


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


def publish_method_frame(channel: int, exchange: str, routing_key: str) -> bytes:
    """The marshalled mandatory basic.publish method frame: the same for every copy."""
    method = Basic.Publish(exchange=exchange, routing_key=routing_key, mandatory=True)
    return pamqp.frame.marshal(method, channel)


def publish_frames(
    channel: int, method: bytes, body: bytes, properties: Basic.Properties, max_body_frame: int
) -> bytes:
    """One copy, marshalled: the method frame, the content header, the body frames."""
    try:
        header = pamqp.frame.marshal(ContentHeader(0, len(body), properties), channel)
    except TypeError:
        # pamqp decodes a long-string header that is not UTF-8 to bytes but
        # cannot encode bytes: send those values as byte arrays (same bytes).
        if not properties.headers:
            raise
        properties.headers = binary_safe(properties.headers)
        header = pamqp.frame.marshal(ContentHeader(0, len(body), properties), channel)
    parts = [method, header]
    for start in range(0, len(body), max_body_frame):
        chunk = body[start : start + max_body_frame]
        # A body frame: type 3, channel, size, payload, frame end (0xCE).
        parts += [BODY_FRAME.pack(3, channel, len(chunk)), chunk, FRAME_END]
    return b"".join(parts)


def binary_safe(value: Any) -> Any:
    """``value`` with every ``bytes`` inside it turned into ``bytearray`` (AMQP byte array)."""
    if isinstance(value, bytes):
        return bytearray(value)
    if isinstance(value, dict):
        return {k: binary_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [binary_safe(v) for v in value]
    return value


def ack_frame(channel: int, tag: int, *, multiple: bool) -> bytes:
    return pamqp.frame.marshal(Basic.Ack(delivery_tag=tag, multiple=multiple), channel)
