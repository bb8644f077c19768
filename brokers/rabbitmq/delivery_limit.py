"""The delivery limit of a RabbitMQ queue, known before a peek touches a message.

A quorum queue counts every return of a message (``basic.nack``/``reject`` with
requeue, and on 3.x also a closed channel) as a delivery; once the count
passes the limit the message is dead-lettered, or dropped when the queue has
no dead-letter exchange. A peek (``basic.get`` then requeue) is such a return,
and a message's count (``x-delivery-count``) is only visible once it has been
delivered: by then returning it already counts. So no peek can be sure it will
not be the return that pushes some message over its limit, and a peek of a
queue with a delivery limit is refused before any message is read.

Where the limit comes from, as RabbitMQ applies it (the lowest wins):

* the ``x-delivery-limit`` queue argument;
* ``delivery-limit`` in the queue's policy or operator policy. The management
  API's ``effective_policy_definition`` merges both but lags a policy change
  by a statistics interval, so the vhost's policies are matched here too
  (a user without the ``policymaker`` tag cannot list them; then only the
  effective definition counts);
* from RabbitMQ 4.0 on, a default of 20 for every quorum queue without one.
  A negative limit (4.x) means unlimited.

Classic queues and streams have no delivery limit.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping, Sequence
from typing import Any

from brokers.base import BrokerAuthError, NotFound
from brokers.rabbitmq.connection import Session
from brokers.rabbitmq.models import DeliveryLimit, PeekPlan
from brokers.rabbitmq.routes import Policy, load_policies, policy_for
from brokers.rabbitmq.values import as_int, as_mapping, as_text

RABBITMQ4_DEFAULT_LIMIT = 20
_MAJOR = re.compile(r"\s*(\d+)\.")


def rabbitmq_major(version: str | None) -> int | None:
    found = _MAJOR.match(version or "")
    return int(found.group(1)) if found else None


def delivery_limit(
    queue_type: str,
    arguments: Mapping[str, Any],
    policy_definitions: Sequence[tuple[str, Mapping[str, Any]]],
    version: str | None,
) -> DeliveryLimit | None:
    """The limit that applies, or None. ``policy_definitions`` are ``(source, definition)``
    pairs; an unknown version counts as 4.x (with its default), to be safe."""
    if queue_type != "quorum":
        return None
    found: list[tuple[int, str]] = []
    argument = as_int(arguments.get("x-delivery-limit"))
    if argument is not None:
        found.append((argument, "argument"))
    for source, definition in policy_definitions:
        value = as_int(definition.get("delivery-limit"))
        if value is not None:
            found.append((value, source))
    limits = [(value, source) for value, source in found if value >= 0]
    if limits:
        lowest = min(value for value, _ in limits)
        sources = sorted({source for value, source in limits if value == lowest})
        return DeliveryLimit(limit=lowest, source=" and ".join(sources))
    if found:
        return None  # only negative values: unlimited (RabbitMQ 4)
    major = rabbitmq_major(version)
    if major is None or major >= 4:
        return DeliveryLimit(limit=RABBITMQ4_DEFAULT_LIMIT, source="RabbitMQ 4 default")
    return None


async def _policies(broker: Session, vhost: str, *, operator: bool) -> tuple[Policy, ...]:
    try:
        return await load_policies(broker, vhost, operator=operator)
    except (NotFound, BrokerAuthError):
        return ()


async def _version(broker: Session) -> str | None:
    data = await broker.management_get("/api/overview", {"columns": "rabbitmq_version"})
    version = data.get("rabbitmq_version") if isinstance(data, Mapping) else None
    return version if isinstance(version, str) else None


async def peek_plan(broker: Session, vhost: str, info: Mapping[str, Any]) -> PeekPlan:
    """What a peek of the queue described by ``info`` (its management API record,
    with ``type``, ``name``, ``arguments`` and ``effective_policy_definition``) would do."""
    name = as_text(info.get("name"))
    kind = as_text(info.get("type")) or "classic"
    if kind != "quorum":
        return PeekPlan(vhost=vhost, queue=name, queue_type=kind, delivery_limit=None)
    version, policies, operator_policies = await asyncio.gather(
        _version(broker),
        _policies(broker, vhost, operator=False),
        _policies(broker, vhost, operator=True),
    )
    definitions: list[tuple[str, Mapping[str, Any]]] = [
        ("policy", as_mapping(info.get("effective_policy_definition")))
    ]
    for source, found in (
        ("policy", policy_for(policies, vhost, name, kind)),
        ("operator policy", policy_for(operator_policies, vhost, name, kind)),
    ):
        if found is not None:
            definitions.append((source, found.definition))
    limit = delivery_limit(kind, as_mapping(info.get("arguments")), definitions, version)
    return PeekPlan(vhost=vhost, queue=name, queue_type=kind, delivery_limit=limit)
