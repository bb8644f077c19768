"""Shared plumbing of the Kafka services: the adapter, roles, audit, input errors."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from brokers.base import ClusterConfig, ConfigError, NotSupported
from brokers.kafka import KafkaBroker
from brokers.kafka_clients import set_pool_size
from dashboard.models import AuditEntry, Cluster
from dashboard.roles import has_role
from dashboard.services import audit, clusters
from dashboard.services.connections import get_broker

User = AbstractBaseUser | AnonymousUser

set_pool_size(settings.MQB_KAFKA_BROWSE_CONSUMERS)


class InvalidInput(ValueError):
    """A parameter the user sent is wrong; the message says which and why (HTTP 400)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def kafka_config(slug: str) -> ClusterConfig:
    config = clusters.get_cluster_config(slug)
    if config.kind != "kafka":
        raise ConfigError(f"cluster {slug!r} is not a Kafka cluster")
    return config


def kafka_slugs() -> list[str]:
    # Through the module, so tests can point it at other clusters.
    return [c.slug for c in clusters.get_cluster_configs() if c.kind == "kafka"]


async def get_kafka(slug: str) -> KafkaBroker:
    """The process's connected adapter of Kafka cluster ``slug``."""
    kafka_config(slug)
    broker = await get_broker(slug)
    if not isinstance(broker, KafkaBroker):
        raise ConfigError(f"cluster {slug!r} is not a Kafka cluster")
    return broker


def parse_int(
    params: Any, name: str, default: int | None = None, *, low: int | None = None
) -> int | None:
    """An integer query/form parameter; empty means ``default``."""
    raw = str(params.get(name, "") or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise InvalidInput(f"{name} must be a whole number, not {raw[:40]!r}") from None
    if low is not None and value < low:
        raise InvalidInput(f"{name} must be at least {low}")
    return value


@sync_to_async
def _record(**fields: Any) -> None:
    slug = fields.pop("slug")
    cluster = Cluster.objects.filter(slug=slug).first() or clusters.sync_cluster_rows().get(slug)
    audit.record(cluster=cluster, **fields)


async def audit_write(
    *,
    slug: str,
    action: str,
    user: User,
    target: str,
    parameters: dict[str, Any],
    outcome: str = AuditEntry.Outcome.OK,
    detail: str = "",
    request: HttpRequest | None = None,
) -> None:
    await _record(
        slug=slug,
        action=action,
        user=user,
        target=target,
        parameters=parameters,
        outcome=outcome,
        detail=detail,
        request=request,
    )


async def authorize_write(
    *,
    slug: str,
    role: str,
    action: str,
    user: User,
    target: str,
    parameters: dict[str, Any],
    request: HttpRequest | None,
) -> ClusterConfig:
    """Refuse (and audit the refusal) unless ``user`` has ``role`` and the cluster is writable."""
    config = kafka_config(slug)
    reason = ""
    if not await sync_to_async(has_role)(user, role):
        reason = f"this needs the {role} role"
    elif config.read_only:
        reason = f"cluster {config.display_name!r} is read-only"
    if reason:
        await audit_write(
            slug=slug,
            action=action,
            user=user,
            target=target,
            parameters=parameters,
            outcome=AuditEntry.Outcome.REFUSED,
            detail=reason,
            request=request,
        )
        if config.read_only and "read-only" in reason:
            raise NotSupported(reason)
        raise PermissionDenied(reason)
    return config
