"""Shared plumbing of the Kafka services: the adapter, roles, audit, bounded parameters."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from brokers.base import ClusterConfig, ConfigError, NotSupported, validate
from brokers.base.browse import TopicBrowser
from brokers.kafka.clients import set_pool_size
from brokers.registry import kind_of, require
from dashboard.core import clusters
from dashboard.core.audit import audit as audit
from dashboard.core.audit import audited as audited
from dashboard.core.connections import get_broker
from dashboard.core.params import INT32_MAX, INT64_MAX, InvalidInput
from dashboard.core.params import parse_int as bounded_int
from dashboard.core.roles import has_role
from dashboard.models import AuditEntry

User = AbstractBaseUser | AnonymousUser

set_pool_size(settings.MQB_KAFKA_BROWSE_CONSUMERS)


def kafka_config(slug: str) -> ClusterConfig:
    config = clusters.get_cluster_config(slug)
    if kind_of(config).topics is None:
        raise ConfigError(f"cluster {slug!r} is not a Kafka cluster")
    return config


def kafka_slugs() -> list[str]:
    """The clusters whose kind has topics to browse."""
    # Through the module, so tests can point it at other clusters.
    return [c.slug for c in clusters.get_cluster_configs() if kind_of(c).topics is not None]


async def get_kafka(slug: str) -> TopicBrowser:
    """The topic browser over the process's connected adapter of cluster ``slug``."""
    topics = require(kafka_config(slug), lambda k: k.topics, "topics")
    return topics(await get_broker(slug))


def parse_int(
    params: Any, name: str, default: int | None = None, *, low: int = 0, high: int = INT64_MAX
) -> int | None:
    """An integer query/form parameter in ``[low, high]``; empty means ``default``.

    Offsets are 64-bit and partitions 32-bit in Kafka (and in librdkafka, which
    overflows past them): pass ``high=INT32_MAX`` for partitions.
    """
    raw = str(params.get(name, "") or "").strip()
    if not raw:
        return default
    return bounded_int(raw, name=name, low=low, high=high, error=InvalidInput)


def check_topic(topic: str) -> str:
    """``topic`` if Kafka could have a topic of that name (Kafka's own rule, which also
    keeps NUL, surrogates and '/' from librdkafka); else :class:`InvalidInput`."""
    try:
        return validate.kafka_topic(topic)
    except validate.InvalidValue as exc:
        raise InvalidInput(exc.message) from None


def check_group(group_id: str) -> str:
    """A consumer group id librdkafka can send: strict UTF-8 without NUL (it reads a C
    string, so ``a\x00b`` would silently become ``a``); else :class:`InvalidInput`."""
    try:
        validate.utf8(group_id, "group", nul=False)
    except validate.InvalidValue as exc:
        raise InvalidInput(exc.message) from None
    if not group_id:
        raise InvalidInput("group: a consumer group id is required")
    return group_id


def check_position(partition: int, offset: int) -> None:
    """A record's partition and offset as Kafka numbers them (from a URL path)."""
    if not 0 <= partition <= INT32_MAX:
        raise InvalidInput(f"partition must be between 0 and {INT32_MAX}")
    if not 0 <= offset <= INT64_MAX:
        raise InvalidInput(f"offset must be between 0 and {INT64_MAX}")


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
        await audit(
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
