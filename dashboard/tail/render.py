"""Tail messages as the JSON the websocket sends (built once per message, shared by viewers)."""

from __future__ import annotations

from typing import Any

from brokers.base.tail import TailMessage
from brokers.decode import Decoded


def _decoded(decoded: Decoded) -> dict[str, Any]:
    return {
        "format": decoded.format,
        "size": decoded.size,
        "text": decoded.text,
        "truncated": decoded.truncated,
        "note": decoded.note,
    }


def message_json(message: TailMessage) -> dict[str, Any]:
    data: dict[str, Any] = {
        "received_at": message.received_at.isoformat(),
        "size": message.size,
        "body": _decoded(message.body),
        "headers": [[h.key, h.type_name, h.display] for h in message.headers],
    }
    if message.partition is not None:
        data.update(
            partition=message.partition,
            offset=message.offset,
            timestamp=message.timestamp.isoformat() if message.timestamp else None,
            key=_decoded(message.key) if message.key is not None else None,
        )
    else:
        data.update(
            exchange=message.exchange,
            routing_key=message.routing_key,
            properties=dict(message.properties),
        )
    return data
