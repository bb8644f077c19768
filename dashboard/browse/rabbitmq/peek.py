"""Peeking at RabbitMQ messages: who may, confirmation, the read itself, decoding, download.

RabbitMQ has no non-destructive read for classic and quorum queues: a peek
requeues the messages, marks them redelivered and may reorder them (see
``brokers.rabbitmq.messages``). So such a peek is a write: it needs the
operator role, is refused on read-only clusters, and is refused on queues with
a delivery limit, where it could dead-letter or drop a message (see
``brokers.rabbitmq.delivery_limit``). The first peek at a queue needs the
user's explicit confirmation, remembered in the session for that queue, except
on protected clusters, where every peek needs it. Streams are read by offset
without side effects: viewers may read them, on read-only clusters too. Every
peek and every refusal is audited.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.http import HttpRequest

from brokers.base import BrokerError
from brokers.decode import (
    CeleryTask,
    DeathEvent,
    Decoded,
    HeaderValue,
    decode_body,
    decode_headers,
)
from brokers.decode import decode_x_death as decode_deaths
from brokers.rabbitmq.messages import refusal
from brokers.rabbitmq.models import PeekedMessage, PeekPlan, PeekRefused, PeekResult, QueueRow
from dashboard.browse.rabbitmq.access import (
    User,
    audit,
    audited,
    get_rabbitmq_config,
    queue_target,
    rabbitmq_broker,
    require_role,
    require_writable,
)
from dashboard.browse.rabbitmq.peek_store import StoredBodies, load_body, store_bodies
from dashboard.core import display
from dashboard.core.api import Refusal
from dashboard.core.params import InvalidInput
from dashboard.core.roles import OPERATOR, has_role
from dashboard.models import AuditEntry

CONFIRMED_KEY = "mqb.rabbitmq.peek_confirmed"
TOKENS_KEY = "mqb.rabbitmq.peek_tokens"
MAX_REMEMBERED = 200
MAX_TOKENS = 20
DELIVERY_MODES = {1: "1 (transient)", 2: "2 (persistent)"}

display.register("redelivered", "Redelivered", "warn")


class ConfirmationRequired(Refusal):
    """The first peek at a queue needs the user's confirmation that it may reorder it."""

    code = "confirmation_required"


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
    stored: StoredBodies  # its token serves downloads; None (with a note) when not kept
    display_limit: int

    @property
    def token(self) -> str | None:
        return self.stored.token


def _confirm_key(slug: str, vhost: str, queue: str) -> str:
    return "\x00".join((slug, vhost, queue))


async def get_queue_summary(slug: str, vhost: str, queue: str) -> QueueRow:
    broker = await rabbitmq_broker(slug)
    return await broker.queue_summary(vhost, queue)


async def is_peek_confirmed(request: HttpRequest, slug: str, vhost: str, queue: str) -> bool:
    """Whether this session confirmed peeks of the queue (never on protected clusters)."""
    if get_rabbitmq_config(slug).protected:
        return False
    confirmed = await request.session.aget(CONFIRMED_KEY, [])
    return _confirm_key(slug, vhost, queue) in confirmed


async def get_peek_plan(slug: str, vhost: str, queue: str) -> PeekPlan:
    broker = await rabbitmq_broker(slug)
    return await broker.peek_plan(vhost, queue)


async def peek_refusal(slug: str, plan: PeekPlan, user: User) -> str | None:
    """Why a peek by ``user`` would be refused, for pages that offer no button that fails."""
    if not plan.destructive:
        return None
    if not await sync_to_async(has_role)(user, OPERATOR):
        return (
            f"Peeking at a {plan.queue_type} queue takes the messages and requeues them, which"
            " changes the queue: it needs the operator role. Viewers can read streams and the"
            " dead letters mqboard has captured."
        )
    config = get_rabbitmq_config(slug)
    if config.read_only:
        return (
            f"{config.display_name} is read-only in mqboard, and peeking at a"
            f" {plan.queue_type} queue requeues its messages."
        )
    if plan.delivery_limit is not None:
        return refusal(plan)
    return None


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


async def _refuse(
    slug: str,
    target: str,
    parameters: dict[str, Any],
    reason: str,
    user: User,
    request: HttpRequest,
) -> None:
    await audit(
        action="rabbitmq.peek",
        user=user,
        slug=slug,
        target=target,
        parameters=parameters,
        outcome=AuditEntry.Outcome.REFUSED,
        detail=reason,
        request=request,
    )


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
    """Read the first ``count`` messages. Raises PermissionDenied (viewers), NotSupported
    (read-only cluster), PeekRefused (delivery limit) for classic and quorum queues, and
    ConfirmationRequired before the first peek at one in this session, unless ``confirm``."""
    config = get_rabbitmq_config(slug)
    if not 1 <= count <= settings.MQB_RABBITMQ_PEEK_MAX:
        raise InvalidInput(f"count must be between 1 and {settings.MQB_RABBITMQ_PEEK_MAX}")
    broker = await rabbitmq_broker(slug)
    target = queue_target(vhost, queue)
    parameters: dict[str, Any] = {"vhost": vhost, "queue": queue, "count": count}
    plan = await broker.peek_plan(vhost, queue)
    if plan.destructive:
        await require_role(
            user, OPERATOR, action="rabbitmq.peek", slug=slug, target=target, request=request
        )
        try:
            require_writable(config)
        except BrokerError as exc:
            await _refuse(slug, target, parameters, exc.message, user, request)
            raise
        if plan.delivery_limit is not None:
            await _refuse(slug, target, parameters, refusal(plan), user, request)
            raise PeekRefused(refusal(plan), plan.delivery_limit)
        if not (confirm or await is_peek_confirmed(request, slug, vhost, queue)):
            raise ConfirmationRequired(
                f"peeking at {target} requeues the messages, marks them redelivered and may"
                " reorder them: confirm first"
                + (" (every time on a protected cluster)" if config.protected else "")
            )
    async with audited(
        "rabbitmq.peek",
        user=user,
        slug=slug,
        target=target,
        parameters=parameters,
        request=request,
        # A policy that appeared since the plan: still refused before any read.
        refused=(PeekRefused,),
    ) as entry:
        result = await broker.peek(vhost, queue, count, max_bytes=settings.MQB_RABBITMQ_PEEK_BYTES)
        if confirm and result.destructive:
            await _remember(
                request, CONFIRMED_KEY, _confirm_key(slug, vhost, queue), MAX_REMEMBERED
            )
        owner = str(getattr(user, "pk", None) or "")
        stored = await store_bodies(((m.position, m.body) for m in result.messages), user=owner)
        if stored.token is not None:
            await _remember(request, TOKENS_KEY, [stored.token, slug, vhost, queue], MAX_TOKENS)
        entry.parameters.update(
            read=len(result.messages),
            destructive=result.destructive,
            bytes=sum(len(m.body) for m in result.messages),
            kept_for_download=stored.token is not None,
        )
    limit = settings.MQB_DISPLAY_LIMIT
    # Decoding parses up to 1 MiB per body: off the event loop.
    views = await asyncio.to_thread(_views, result, limit)
    return PeekView(result=result, messages=views, stored=stored, display_limit=limit)


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _celery_data(task: CeleryTask | None) -> dict[str, Any] | None:
    if task is None:
        return None
    return {
        "protocol": task.protocol,
        "name": task.name,
        "id": task.id,
        # Shown as Python writes them, as the page did when it rendered the task itself.
        "args": _text(task.args) if task.args is not None else task.argsrepr,
        "kwargs": _text(task.kwargs) if task.kwargs is not None else task.kwargsrepr,
        "retries": task.retries,
        "eta": _iso(task.eta),
        "expires": _iso(task.expires),
        "origin": task.origin,
        "parent_id": task.parent_id,
    }


def peek_data(view: PeekView) -> dict[str, Any]:
    """What the peek page shows of a peek, as JSON-ready data (text, never HTML): the
    page renders it with autoescape, now or after a redirect."""
    return {
        "requested": view.result.requested,
        "fetched_at": _iso(view.result.fetched_at),
        "remaining": view.result.remaining,
        "token": view.token,
        "note": view.stored.note,
        "dropped": view.stored.dropped,
        "display_limit": view.display_limit,
        "messages": [
            {
                "position": m.message.position,
                "size": m.size,
                "redelivered": m.message.redelivered,
                "exchange": m.message.exchange,
                "routing_key": m.message.routing_key,
                "format": m.decoded.format,
                "note": m.decoded.note,
                "text": m.decoded.text,
                "truncated": m.decoded.truncated,
                "celery": _celery_data(m.decoded.celery),
                "properties": [list(row) for row in m.properties],
                "headers": [
                    {"key": h.key, "type_name": h.type_name, "display": h.display}
                    for h in m.headers
                ],
                "deaths": [
                    {
                        "time": _iso(d.time),
                        "reason": d.reason,
                        "queue": d.queue,
                        "exchange": d.exchange,
                        "routing_keys": list(d.routing_keys),
                        "count": d.count,
                        "original_expiration": d.original_expiration,
                    }
                    for d in m.deaths
                ],
            }
            for m in view.messages
        ],
    }


def peek_for_page(data: dict[str, Any]) -> dict[str, Any]:
    """:func:`peek_data` read back, its times as datetimes again for ``{% when %}``."""
    page = dict(data)
    page["fetched_at"] = _moment(data.get("fetched_at"))
    page["messages"] = [
        {
            **m,
            "celery": _celery_for_page(m["celery"]),
            "deaths": [{**d, "time": _moment(d.get("time"))} for d in m["deaths"]],
        }
        for m in data["messages"]
    ]
    return page


def _celery_for_page(task: dict[str, Any] | None) -> dict[str, Any] | None:
    if task is None:
        return None
    return {**task, "eta": _moment(task["eta"]), "expires": _moment(task["expires"])}


def _moment(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


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
