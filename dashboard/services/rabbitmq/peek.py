"""Peeking at RabbitMQ messages: confirmation, the read itself, decoding, download.

RabbitMQ has no non-destructive read for classic and quorum queues: a peek
requeues the messages, marks them redelivered and may reorder them (see
``brokers.rabbitmq_messages``). So the first peek at a queue needs the user's
explicit confirmation, remembered in the session for that queue; streams are
read by offset and need none. Every peek is audited, since it changes state.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.http import HttpRequest

from brokers.base import BrokerError
from brokers.decode import DeathEvent, Decoded, HeaderValue, decode_body, decode_headers
from brokers.decode import decode_x_death as decode_deaths
from brokers.rabbitmq_messages_model import PeekedMessage, PeekResult
from brokers.rabbitmq_model import QueueRow
from dashboard.models import AuditEntry
from dashboard.services.rabbitmq.common import (
    InvalidInput,
    User,
    audit,
    queue_target,
    rabbitmq_broker,
)
from dashboard.services.rabbitmq.peek_store import load_body, store_bodies

CONFIRMED_KEY = "mqb.rabbitmq.peek_confirmed"
TOKENS_KEY = "mqb.rabbitmq.peek_tokens"
MAX_REMEMBERED = 200
MAX_TOKENS = 20
DELIVERY_MODES = {1: "1 (transient)", 2: "2 (persistent)"}


class ConfirmationRequired(Exception):
    """The first peek at a queue needs the user's confirmation that it may reorder it."""


@dataclass(frozen=True)
class MessageView:
    message: PeekedMessage
    decoded: Decoded
    properties: tuple[tuple[str, str], ...]
    headers: tuple[HeaderValue, ...]
    deaths: tuple[DeathEvent, ...]

    @property
    def size(self) -> int:
        return len(self.message.body)


@dataclass(frozen=True)
class PeekView:
    result: PeekResult
    messages: tuple[MessageView, ...]
    token: str | None  # for downloads; None when the bodies could not be kept
    display_limit: int


def _confirm_key(slug: str, vhost: str, queue: str) -> str:
    return "\x00".join((slug, vhost, queue))


async def get_queue_summary(slug: str, vhost: str, queue: str) -> QueueRow:
    broker = await rabbitmq_broker(slug)
    return await broker.queue_summary(vhost, queue)


async def is_peek_confirmed(request: HttpRequest, slug: str, vhost: str, queue: str) -> bool:
    confirmed = await request.session.aget(CONFIRMED_KEY, [])
    return _confirm_key(slug, vhost, queue) in confirmed


async def _remember(request: HttpRequest, key: str, value: Any, limit: int) -> None:
    items = [item for item in await request.session.aget(key, []) if item != value]
    items.append(value)
    await request.session.aset(key, items[-limit:])


def property_rows(properties: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    rows = []
    for name, value in properties.items():
        if isinstance(value, datetime):
            text = value.isoformat()
        elif name == "delivery_mode":
            text = DELIVERY_MODES.get(value, str(value))
        else:
            text = str(value)
        rows.append((name, text))
    return tuple(rows)


def _views(result: PeekResult, limit: int) -> tuple[MessageView, ...]:
    views = []
    for message in result.messages:
        props = dict(message.properties)
        views.append(
            MessageView(
                message=message,
                decoded=decode_body(
                    message.body,
                    content_type=props.get("content_type"),
                    content_encoding=props.get("content_encoding"),
                    headers=message.headers,
                    limit=limit,
                ),
                properties=property_rows(props),
                headers=decode_headers(message.headers),
                deaths=decode_deaths(message.headers),
            )
        )
    return tuple(views)


async def do_peek_messages(
    slug: str,
    vhost: str,
    queue: str,
    count: int,
    *,
    user: User,
    request: HttpRequest,
    confirm: bool = False,
) -> PeekView:
    """Read the first ``count`` messages. Raises ConfirmationRequired before the first
    destructive peek at a queue in this session, unless ``confirm``."""
    if not 1 <= count <= settings.MQB_RABBITMQ_PEEK_MAX:
        raise InvalidInput(f"count must be between 1 and {settings.MQB_RABBITMQ_PEEK_MAX}")
    broker = await rabbitmq_broker(slug)
    confirmed = confirm or await is_peek_confirmed(request, slug, vhost, queue)
    if not confirmed:
        summary = await broker.queue_summary(vhost, queue)
        if summary.type != "stream":
            raise ConfirmationRequired(
                f"peeking at {queue_target(vhost, queue)} requeues the messages, marks them"
                " redelivered and may reorder them: confirm first"
            )
    target = queue_target(vhost, queue)
    parameters: dict[str, Any] = {"vhost": vhost, "queue": queue, "count": count}
    try:
        result = await broker.peek(vhost, queue, count, max_bytes=settings.MQB_RABBITMQ_PEEK_BYTES)
    except BrokerError as exc:
        await audit(
            action="rabbitmq.peek",
            user=user,
            slug=slug,
            target=target,
            parameters=parameters,
            outcome=AuditEntry.Outcome.FAILED,
            detail=exc.message,
            request=request,
        )
        raise
    if confirm:
        await _remember(request, CONFIRMED_KEY, _confirm_key(slug, vhost, queue), MAX_REMEMBERED)
    token = await store_bodies((m.position, m.body) for m in result.messages)
    if token is not None:
        await _remember(request, TOKENS_KEY, [token, slug, vhost, queue], MAX_TOKENS)
    await audit(
        action="rabbitmq.peek",
        user=user,
        slug=slug,
        target=target,
        parameters={**parameters, "read": len(result.messages), "destructive": result.destructive},
        request=request,
    )
    limit = settings.MQB_DISPLAY_LIMIT
    # Decoding parses up to 1 MiB per body: off the event loop.
    views = await asyncio.to_thread(_views, result, limit)
    return PeekView(result=result, messages=views, token=token, display_limit=limit)


async def get_peeked_body(
    request: HttpRequest, slug: str, token: str, position: int
) -> tuple[bytes, str] | None:
    """The full body of a peeked message and a file name, if this session peeked it."""
    for item in await request.session.aget(TOKENS_KEY, []):
        if isinstance(item, list) and len(item) == 4 and item[0] == token and item[1] == slug:
            body = await load_body(token, position)
            if body is None:
                return None
            return body, f"{item[3]}-{position}.bin"
    return None
