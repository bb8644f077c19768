"""Every write the dashboard makes is recorded here, and only here.

Text in an entry may come from a broker or a user (a Kafka key, a queue name) and
so hold NUL, which PostgreSQL's text and jsonb refuse: it is stored as U+FFFD, as
captured dead letters store it, on every database alike. So is a lone surrogate
(a refused ``"\\ud800"`` in a request's JSON), which is not UTF-8 and which jsonb
refuses too.
"""

from __future__ import annotations

import functools
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from brokers.base import BrokerError
from dashboard.core.roles import has_role
from dashboard.models import AuditEntry, Cluster


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def _storable(value: Any) -> Any:
    """``value`` with NUL and lone surrogates in its text replaced by U+FFFD."""
    if isinstance(value, str):
        return _UNSTORABLE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {_storable(k): _storable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_storable(v) for v in value]
    return value


def record(
    *,
    action: str,
    user: AbstractBaseUser | AnonymousUser | None,
    outcome: str = AuditEntry.Outcome.OK,
    cluster: Cluster | None = None,
    target: str = "",
    parameters: dict[str, Any] | None = None,
    detail: str = "",
    request: HttpRequest | None = None,
) -> AuditEntry:
    real_user = user if isinstance(user, User) and user.is_authenticated else None
    return AuditEntry.objects.create(
        user=real_user,
        username=real_user.get_username() if real_user is not None else "",
        action=action,
        cluster=cluster,
        target=_storable(target),
        parameters=_storable(parameters or {}),
        outcome=outcome,
        detail=_storable(detail),
        client_ip=client_ip(request),
    )


AnyUser = AbstractBaseUser | AnonymousUser


@sync_to_async
def audit(
    *,
    action: str,
    user: AnyUser | None,
    slug: str,
    target: str,
    parameters: dict[str, Any],
    outcome: str = AuditEntry.Outcome.OK,
    detail: str = "",
    request: HttpRequest | None = None,
) -> AuditEntry:
    """``record`` for async services that know the cluster by its slug."""
    from dashboard.core.clusters import sync_cluster_rows

    cluster = Cluster.objects.filter(slug=slug).first() or sync_cluster_rows().get(slug)
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


@dataclass
class Audited:
    """The entry :func:`audited` writes when its block ends: the block adds what it learnt
    to ``parameters`` (and may set ``detail``)."""

    parameters: dict[str, Any]
    detail: str = ""


@asynccontextmanager
async def audited(
    action: str,
    *,
    user: AnyUser | None,
    slug: str,
    target: str,
    parameters: dict[str, Any],
    request: HttpRequest | None = None,
    refused: tuple[type[BrokerError], ...] = (),
) -> AsyncIterator[Audited]:
    """Audit the broker work in the block, once, whatever happens to it.

    A :class:`BrokerError` is recorded FAILED (REFUSED if it is one of ``refused``, the
    broker's own refusals) with its message and the parameters as they stood, then
    raised again; a block that ends normally is recorded OK with the parameters and
    detail it left in the yielded :class:`Audited`.
    """
    entry = Audited(dict(parameters))
    write = functools.partial(
        audit, action=action, user=user, slug=slug, target=target, request=request
    )
    try:
        yield entry
    except BrokerError as exc:
        refusal = isinstance(exc, refused)
        await write(
            parameters=entry.parameters,
            outcome=AuditEntry.Outcome.REFUSED if refusal else AuditEntry.Outcome.FAILED,
            detail=exc.message,
        )
        raise
    await write(parameters=entry.parameters, detail=entry.detail)


async def require_role(
    user: AnyUser, role: str, *, action: str, slug: str, target: str, request: HttpRequest | None
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
