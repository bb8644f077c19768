"""The dry run of a bulk requeue: what it will do, shown before it is confirmed.

``do_dry_run`` (operator) freezes the selection (ids, a group or the inbox
filter, with ``upto``: letters captured later are left out; see
``requeue_job.freeze_selection``) and counts, per target (the exchange and
routing key, or topic, after redirects: ``RedirectTable``), how many letters go
there, whether the target exists now (the kind's ``DeadLetters.missing``: an
exchange or topic gone makes every letter to it unroutable), the oldest and
newest failure times, and how many letters are poison or parked. It groups the
letters by their origin fields in SQL first and resolves each distinct origin
once; bodies are never read.

The frozen ids and the result are kept in Redis (``REDIS_URL``, under
``MQB_CHANNEL_PREFIX``) under a one-time token for ``MQB_DLQ_PREVIEW_TTL``
seconds, readable only by the session that made it. ``do_confirm_now`` and
``do_confirm_schedule`` start exactly those letters (``expect`` = their number);
when some changed meanwhile the services refuse (``SelectionChanged``) and the
caller makes a fresh dry run of the same choice (``do_dry_run_again``). A token
is deleted once its requeue started; an unknown or expired one is
:class:`PreviewExpired`.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import redis.asyncio
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import BooleanField, Case, Count, Max, Min, Q, Value, When
from django.db.models.functions import Coalesce
from django.http import HttpRequest
from redis.exceptions import RedisError

from brokers.base import BrokerError
from brokers.base.deadletters import DeadLetters, Destination, InvalidLetter, StoredLetter
from brokers.base.validate import InvalidValue
from brokers.registry import require
from dashboard.core import display
from dashboard.core.clusters import get_cluster_config
from dashboard.core.connections import get_broker
from dashboard.core.params import InvalidInput
from dashboard.core.roles import OPERATOR
from dashboard.deadletters import loop_guard
from dashboard.deadletters import requeue_job as bulk
from dashboard.deadletters import schedule as schedules
from dashboard.deadletters.common import User, require_role
from dashboard.deadletters.inbox import InboxFilter
from dashboard.deadletters.redirects import RedirectTable
from dashboard.models import DeadLetter, Job, RequeueSchedule

ACTION = "deadletters.preview"

display.register("unroutable", "Unroutable", display.WARN)
display.register("exists", "Exists", display.OK)
display.register("unchecked", "Not checked", display.MUTED)
CHUNK = 10_000  # ids per statement (SQLite allows 32,766 parameters)
ORIGIN_FIELDS = (
    "cluster__slug",
    "vhost",
    "origin_exchange",
    "origin_routing_key",
    "origin_queue",
    "origin_topic",
    "origin_partition",
    "is_task",
)


class PreviewExpired(InvalidInput):
    """The dry run is unknown, expired or another session's: nothing can be confirmed."""


class PreviewUnavailable(InvalidInput):
    """Redis (where dry runs are kept) cannot be reached."""


@dataclass
class Target:
    """Where some of the letters go, and what the dry run found about it."""

    cluster: str
    where: str
    destination: dict[str, str]
    redirected_from: str = ""
    letters: int = 0
    poison: int = 0
    parked: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    unroutable: bool = False
    unknown: bool = False  # whether it exists could not be checked
    why: str = ""

    def add(self, row: dict[str, Any]) -> None:
        self.letters += row["n"]
        self.poison += row["poison"]
        self.parked += row["parked"]
        if row["oldest"] is not None and (self.oldest is None or row["oldest"] < self.oldest):
            self.oldest = row["oldest"]
        if row["newest"] is not None and (self.newest is None or row["newest"] > self.newest):
            self.newest = row["newest"]


@dataclass
class DryRun:
    """The dry run's result (JSON-safe through :meth:`as_json`)."""

    total: int
    targets: list[Target] = field(default_factory=list)
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def as_json(self) -> dict[str, Any]:
        targets = [
            {
                **t.__dict__,
                "oldest": _iso(t.oldest),
                "newest": _iso(t.newest),
            }
            for t in self.targets
        ]
        oldest = [t.oldest for t in self.targets if t.oldest is not None]
        newest = [t.newest for t in self.targets if t.newest is not None]
        poison = sum(t.poison for t in self.targets)
        return {
            "total": self.total,
            "unroutable": sum(t.letters for t in self.targets if t.unroutable),
            "unchecked": sum(t.letters for t in self.targets if t.unknown),
            "poison": poison,
            "poison_warning": loop_guard.bulk_warning(poison).strip(),
            "parked": sum(t.parked for t in self.targets),
            "oldest": _iso(min(oldest)) if oldest else None,
            "newest": _iso(max(newest)) if newest else None,
            "checked_at": _iso(self.checked_at),
            "targets": targets,
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _origins(selection: list[int]) -> list[dict[str, Any]]:
    """The selection's letters grouped by origin (counts, failure times, flags), in SQL."""
    failed_first = Coalesce("first_failed_at", "last_failed_at", "captured_at")
    failed_last = Coalesce("last_failed_at", "first_failed_at", "captured_at")
    merged: dict[tuple[Any, ...], dict[str, Any]] = {}
    for start in range(0, len(selection), CHUNK):
        rows = (
            DeadLetter.objects.filter(pk__in=selection[start : start + CHUNK])
            .annotate(
                is_task=Case(
                    When(failure_details__has_key="task", then=Value(True)),
                    default=Value(False),
                    output_field=BooleanField(),
                )
            )
            .values(*ORIGIN_FIELDS)
            .annotate(
                n=Count("id"),
                poison=Count("id", filter=Q(poison=True)),
                parked=Count("id", filter=Q(parked=True)),
                oldest=Min(failed_first),
                newest=Max(failed_last),
            )
            .order_by()
        )
        for row in rows:
            key = tuple(row[f] for f in ORIGIN_FIELDS)
            if key not in merged:
                merged[key] = dict(row)
                continue
            into = merged[key]
            for name in ("n", "poison", "parked"):
                into[name] += row[name]
            into["oldest"] = min((x for x in (into["oldest"], row["oldest"]) if x), default=None)
            into["newest"] = max((x for x in (into["newest"], row["newest"]) if x), default=None)
    return list(merged.values())


def _targets(
    origins: list[dict[str, Any]],
) -> tuple[dict[tuple[str, Destination | None, str], Target], dict[str, DeadLetters]]:
    """Each distinct origin resolved once (redirects included) and merged per target."""
    kinds: dict[str, DeadLetters] = {}
    table = RedirectTable.load({row["cluster__slug"] for row in origins})
    targets: dict[tuple[str, Destination | None, str], Target] = {}
    for row in origins:
        slug = row["cluster__slug"]
        if slug not in kinds:
            kinds[slug] = require(get_cluster_config(slug), lambda k: k.deadletters, "requeue")
        deadletters = kinds[slug]
        letter = StoredLetter(
            vhost=row["vhost"],
            origin_exchange=row["origin_exchange"],
            origin_routing_key=row["origin_routing_key"],
            origin_queue=row["origin_queue"],
            origin_topic=row["origin_topic"],
            origin_partition=row["origin_partition"],
            is_task=bool(row["is_task"]),
            key=None,
            headers=None,
            properties={},
            body=b"",
        )
        try:
            resolved = table.resolve(deadletters, slug, letter)
            message = deadletters.outgoing(letter, resolved.target, None)
        except (InvalidLetter, InvalidValue) as exc:
            why = exc.message if isinstance(exc, InvalidValue) else str(exc)
            key: tuple[str, Destination | None, str] = (slug, None, why)
            target = targets.setdefault(
                key, Target(slug, "unknown origin", {}, unroutable=True, why=why)
            )
            target.add(row)
            continue
        source = ""
        if resolved.redirect is not None:
            source = deadletters.outgoing(letter, None, None).where
        destination = Destination.of(message)
        key = (slug, destination, source)
        if key not in targets:
            targets[key] = Target(slug, message.where, dict(message.destination), source)
        targets[key].add(row)
    return targets, kinds


async def dry_run(selection: list[int]) -> DryRun:
    """What requeueing ``selection`` would do now (see the module docstring)."""
    origins = await sync_to_async(_origins)(selection)
    targets, kinds = await sync_to_async(_targets)(origins)
    by_cluster: dict[str, list[Destination]] = defaultdict(list)
    for slug, destination, _ in targets:
        if destination is not None:
            by_cluster[slug].append(destination)
    for slug, destinations in by_cluster.items():
        try:
            broker = await get_broker(slug)
            missing = await kinds[slug].missing(broker, destinations)
        except BrokerError as exc:
            for (s, d, _), target in targets.items():
                if s == slug and d is not None:
                    target.unknown, target.why = True, f"not checked: {exc.message}"
            continue
        for (s, d, _), target in targets.items():
            if s == slug and d is not None and d in missing:
                target.unroutable, target.why = True, missing[d]
    ordered = sorted(targets.values(), key=lambda t: (-t.letters, t.cluster, t.where))
    return DryRun(total=len(selection), targets=ordered)


# -- keeping a dry run under its token ---------------------------------------


def _connect() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=2
    )


def _name(token: str) -> str:
    return f"{settings.MQB_CHANNEL_PREFIX}:dlq-preview:{token}"


def owner_of(request: HttpRequest | None, user: User) -> str:
    """Who may confirm: the user, in this session (a digest of its key, never the key)."""
    session = getattr(request, "session", None) if request is not None else None
    key = getattr(session, "session_key", None) or ""
    digest = hashlib.sha256(key.encode()).hexdigest()[:24] if key else ""
    return f"{getattr(user, 'pk', None)}:{digest}"


def valid_token(token: str) -> bool:
    return 16 <= len(token) <= 64 and all(c.isalnum() or c in "-_" for c in token)


async def _keep(record: dict[str, Any]) -> str:
    token = secrets.token_urlsafe(24)
    client = _connect()
    try:
        ttl = max(1, int(settings.MQB_DLQ_PREVIEW_TTL))
        await client.set(_name(token), json.dumps(record, separators=(",", ":")), ex=ttl)
    except (RedisError, OSError) as exc:
        raise PreviewUnavailable(f"the dry run could not be kept (Redis: {exc})") from None
    finally:
        await client.aclose()
    return token


async def load(token: str, request: HttpRequest | None, user: User) -> dict[str, Any]:
    """The kept dry run (its ``result``, ``ids``, ``source``), if this session made it."""
    if not valid_token(token):
        raise PreviewExpired("no such dry run")
    client = _connect()
    try:
        text = await client.get(_name(token))
    except (RedisError, OSError) as exc:
        raise PreviewUnavailable(f"the dry run could not be read (Redis: {exc})") from None
    finally:
        await client.aclose()
    record = json.loads(text) if text else None
    if not isinstance(record, dict) or record.get("owner") != owner_of(request, user):
        minutes = max(1, round(settings.MQB_DLQ_PREVIEW_TTL / 60))
        raise PreviewExpired(
            "This dry run has expired (they are kept for"
            f" {minutes} minute{'s' if minutes != 1 else ''}) or was already confirmed."
            " Nothing was requeued: start again from the inbox."
        )
    return record


async def _forget(token: str) -> None:
    client = _connect()
    try:
        await client.delete(_name(token))
    except (RedisError, OSError):
        pass  # it expires on its own; the idempotency key stops a second start meanwhile
    finally:
        await client.aclose()


def describe(ids: list[int] | None, spec: InboxFilter | None) -> str:
    """What was chosen, in words."""
    if ids is not None:
        return f"{len(ids):,} selected letter{'s' if len(ids) != 1 else ''}"
    params = spec.as_params() if spec is not None else {}
    if params.get("group"):
        return "a failure group"
    return "every pending letter matching the filter" if params else "every pending letter"


async def do_dry_run(
    *,
    user: User,
    ids: list[int] | None = None,
    spec: InboxFilter | None = None,
    upto: int | None = None,
    request: HttpRequest | None = None,
) -> tuple[str, dict[str, Any]]:
    """Freeze the selection, compute its dry run and keep both; (token, record)."""
    await require_role(
        user, OPERATOR, action=ACTION, slug="", target="deadletters", request=request
    )
    selection = await sync_to_async(bulk.freeze_selection)(ids, spec, upto)
    if not selection:
        raise InvalidInput("no pending dead letter matches: nothing to requeue")
    result = await dry_run(selection)
    if upto is None:
        upto = max(selection)
    expires = datetime.now(UTC) + timedelta(seconds=settings.MQB_DLQ_PREVIEW_TTL)
    record = {
        "owner": owner_of(request, user),
        "expires_at": expires.isoformat(),
        "ids": selection,
        "source": {
            "ids": ids,
            "filter": spec.as_params() if ids is None and spec is not None else None,
            "upto": upto,
            "scope": describe(ids, spec),
        },
        "result": result.as_json(),
    }
    return await _keep(record), record


async def do_dry_run_again(
    record: dict[str, Any], *, user: User, request: HttpRequest | None
) -> str:
    """A fresh dry run of the same choice (same ids or filter, same ``upto``); its token."""
    source = record["source"]
    ids = source.get("ids")
    spec = InboxFilter.from_params(source["filter"]) if source.get("filter") is not None else None
    if ids is None and spec is None:
        spec = InboxFilter()
    token, _ = await do_dry_run(
        user=user, ids=ids, spec=spec, upto=source.get("upto"), request=request
    )
    return token


async def do_confirm_now(
    token: str, *, user: User, rate_limit: Any, request: HttpRequest | None
) -> Job:
    """Start the kept letters as a bulk requeue job (SelectionChanged when some changed)."""
    rate = bulk.rate_limit_of(rate_limit)  # a wrong value is the user's to fix first
    record = await load(token, request, user)
    ids = [int(i) for i in record["ids"]]
    job = await bulk.do_start_bulk_requeue(
        user=user,
        ids=ids,
        rate_limit=rate,
        expect=len(ids),
        request=request,
    )
    await _forget(token)
    return job


async def do_confirm_schedule(
    token: str,
    *,
    user: User,
    at: datetime | None = None,
    delay: float | None = None,
    backoff: schedules.Backoff | None = None,
    request: HttpRequest | None,
) -> RequeueSchedule:
    """Schedule the kept letters (SelectionChanged when some changed)."""
    schedules.start_time(at, delay)  # a wrong time is the user's to fix first
    if backoff is not None:
        backoff.check()
    record = await load(token, request, user)
    ids = [int(i) for i in record["ids"]]
    schedule = await schedules.do_schedule_requeue(
        user=user,
        ids=ids,
        at=at,
        delay=delay,
        backoff=backoff,
        expect=len(ids),
        chosen=(record.get("source") or {}).get("filter"),
        request=request,
    )
    await _forget(token)
    return schedule
