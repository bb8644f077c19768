"""Shared plumbing of the RabbitMQ services: the adapter, roles, refusals and the audit."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from brokers.base import ClusterConfig, NotFound, NotSupported
from brokers.rabbitmq import RabbitMQBroker
from dashboard.core import clusters as cluster_services
from dashboard.core.audit import audit as audit
from dashboard.core.audit import require_role as require_role
from dashboard.core.connections import get_broker

User = AbstractBaseUser | AnonymousUser


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


def require_writable(config: ClusterConfig) -> None:
    if config.read_only:
        raise NotSupported(f"cluster {config.display_name!r} is read-only in mqboard")


def queue_target(vhost: str, name: str) -> str:
    return f"queue {name!r} in vhost {vhost!r}"
