"""Shared plumbing of the RabbitMQ services: the adapter, roles, refusals and the audit."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from brokers.base import ClusterConfig, NotFound, NotSupported
from brokers.rabbitmq import RabbitMQBroker
from dashboard.models import AuditEntry, Cluster
from dashboard.roles import has_role
from dashboard.services import clusters as cluster_services
from dashboard.services.audit import record
from dashboard.services.connections import get_broker

User = AbstractBaseUser | AnonymousUser


class InvalidInput(ValueError):
    """Input a user can fix; the message says how. Views answer 400 with it."""


def get_rabbitmq_configs() -> tuple[ClusterConfig, ...]:
    # Through the module, so that a replaced configuration (tests) is seen.
    return tuple(c for c in cluster_services.get_cluster_configs() if c.kind == "rabbitmq")


def get_rabbitmq_config(slug: str) -> ClusterConfig:
    config = cluster_services.get_cluster_config(slug)
    if config.kind != "rabbitmq":
        raise NotFound(f"cluster {slug!r} is a {config.kind} cluster, not RabbitMQ")
    return config


async def rabbitmq_broker(slug: str) -> RabbitMQBroker:
    """The connected, per-process RabbitMQ adapter of cluster ``slug``."""
    get_rabbitmq_config(slug)
    broker = await get_broker(slug)
    if not isinstance(broker, RabbitMQBroker):
        raise NotFound(f"cluster {slug!r} is not a RabbitMQ cluster")
    return broker


@sync_to_async
def audit(
    *,
    action: str,
    user: User | None,
    slug: str,
    target: str,
    parameters: dict[str, Any],
    outcome: str = AuditEntry.Outcome.OK,
    detail: str = "",
    request: HttpRequest | None = None,
) -> AuditEntry:
    cluster = Cluster.objects.filter(slug=slug).first()
    if cluster is None:
        cluster = cluster_services.sync_cluster_rows().get(slug)
    return record(
        action=action,
        user=user,
        outcome=outcome,
        cluster=cluster,
        target=target,
        parameters=parameters,
        detail=detail,
        request=request,
    )


async def require_role(
    user: User, role: str, *, action: str, slug: str, target: str, request: HttpRequest | None
) -> None:
    """Refuse (PermissionDenied, audited) a user below ``role``."""
    if await sync_to_async(has_role)(user, role):
        return
    await audit(
        action=action,
        user=user,
        slug=slug,
        target=target,
        parameters={},
        outcome=AuditEntry.Outcome.REFUSED,
        detail=f"needs the {role} role",
        request=request,
    )
    raise PermissionDenied(f"this needs the {role} role")


def require_writable(config: ClusterConfig) -> None:
    if config.read_only:
        raise NotSupported(f"cluster {config.display_name!r} is read-only in mqboard")


def queue_target(vhost: str, name: str) -> str:
    return f"queue {name!r} in vhost {vhost!r}"
