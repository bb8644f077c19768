"""Writes to RabbitMQ: publish and purge. Operator role, refused on read-only clusters, audited."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from brokers.rabbitmq.models import OutgoingMessage, PublishResult, PurgeResult
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
from dashboard.core.params import InvalidInput
from dashboard.core.roles import OPERATOR
from dashboard.models import AuditEntry


async def do_publish_message(
    slug: str, vhost: str, message: OutgoingMessage, *, user: User, request: HttpRequest | None
) -> PublishResult:
    config = get_rabbitmq_config(slug)
    exchange = message.exchange or "(default exchange)"
    target = f"exchange {exchange!r} in vhost {vhost!r}"
    await require_role(
        user, OPERATOR, action="rabbitmq.publish", slug=slug, target=target, request=request
    )
    require_writable(config)
    parameters = {
        "vhost": vhost,
        "exchange": message.exchange,
        "routing_key": message.routing_key,
        "size": len(message.body),
        "headers": sorted(message.headers),
    }
    broker = await rabbitmq_broker(slug)
    async with audited(
        "rabbitmq.publish",
        user=user,
        slug=slug,
        target=target,
        parameters=parameters,
        request=request,
    ) as entry:
        result = await broker.publish(vhost, message)
        entry.parameters["message_id"] = result.message_id
    return result


async def do_purge_queue(
    slug: str,
    vhost: str,
    queue: str,
    *,
    confirm_name: str | None,
    user: User,
    request: HttpRequest | None,
) -> PurgeResult:
    """Purge a queue. On a protected cluster ``confirm_name`` must be the queue's name."""
    config = get_rabbitmq_config(slug)
    target = queue_target(vhost, queue)
    await require_role(
        user, OPERATOR, action="rabbitmq.purge", slug=slug, target=target, request=request
    )
    require_writable(config)
    parameters: dict[str, Any] = {"vhost": vhost, "queue": queue}
    if config.protected and confirm_name != queue:
        await audit(
            action="rabbitmq.purge",
            user=user,
            slug=slug,
            target=target,
            parameters=parameters,
            outcome=AuditEntry.Outcome.REFUSED,
            detail="typed confirmation did not match",
            request=request,
        )
        raise InvalidInput(
            f"{config.display_name} is protected: type the queue name exactly to purge it"
        )
    broker = await rabbitmq_broker(slug)
    async with audited(
        "rabbitmq.purge",
        user=user,
        slug=slug,
        target=target,
        parameters=parameters,
        request=request,
    ) as entry:
        result = await broker.purge(vhost, queue)
        depth = None
        if result.ready_before is not None:
            depth = result.ready_before + (result.unacked_before or 0)
        entry.parameters.update(
            depth_before=depth,
            ready_before=result.ready_before,
            unacked_before=result.unacked_before,
            purged=result.purged,
        )
    return result
