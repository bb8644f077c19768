"""Shared plumbing of the RabbitMQ services: the adapter, roles, refusals and the audit."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from brokers.base import ClusterConfig, NotFound, NotSupported
from brokers.base.browse import QueueBrowser
from brokers.registry import kind_of, require
from dashboard.core import clusters as cluster_services
from dashboard.core.audit import audit as audit
from dashboard.core.audit import audited as audited
from dashboard.core.audit import require_role as require_role
from dashboard.core.connections import get_broker

User = AbstractBaseUser | AnonymousUser


def get_rabbitmq_configs() -> tuple[ClusterConfig, ...]:
    """The clusters whose kind has queues to browse."""
    # Through the module, so that a replaced configuration (tests) is seen.
    configs = cluster_services.get_cluster_configs()
    return tuple(c for c in configs if kind_of(c).queues is not None)


def get_rabbitmq_config(slug: str) -> ClusterConfig:
    config = cluster_services.get_cluster_config(slug)
    if kind_of(config).queues is None:
        raise NotFound(f"cluster {slug!r} is a {config.kind} cluster, not RabbitMQ")
    return config


async def rabbitmq_broker(slug: str) -> QueueBrowser:
    """The queue browser over the connected, per-process adapter of cluster ``slug``."""
    queues = require(get_rabbitmq_config(slug), lambda k: k.queues, "queues")
    return queues(await get_broker(slug))


def require_writable(config: ClusterConfig) -> None:
    if config.read_only:
        raise NotSupported(f"cluster {config.display_name!r} is read-only in mqboard")


def queue_target(vhost: str, name: str) -> str:
    return f"queue {name!r} in vhost {vhost!r}"
