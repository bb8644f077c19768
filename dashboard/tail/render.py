"""Tail messages as the JSON the websocket sends (built once per message, shared by viewers)."""

from __future__ import annotations

from brokers.base.tail import TailMessage
from brokers.decode import Decoded
from dashboard.tail.events import AmqpTailed, KafkaTailed, TailDecodedOut, Tailed


def _decoded(decoded: Decoded) -> TailDecodedOut:
    return TailDecodedOut(
        format=decoded.format,
        size=decoded.size,
        text=decoded.text,
        truncated=decoded.truncated,
        note=decoded.note,
    )


def message_json(message: TailMessage) -> Tailed:
    received_at = message.received_at.isoformat()
    body = _decoded(message.body)
    headers = [(h.key, h.type_name, h.display) for h in message.headers]
    if message.partition is not None:
        return KafkaTailed(
            received_at=received_at,
            size=message.size,
            body=body,
            headers=headers,
            partition=message.partition,
            offset=message.offset,
            timestamp=message.timestamp.isoformat() if message.timestamp else None,
            key=_decoded(message.key) if message.key is not None else None,
        )
    return AmqpTailed(
        received_at=received_at,
        size=message.size,
        body=body,
        headers=headers,
        exchange=message.exchange,
        routing_key=message.routing_key,
        properties=dict(message.properties),
    )
