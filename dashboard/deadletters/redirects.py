"""Redirects: requeues to an origin that was renamed or moved go to its new target.

An admin maps an old origin (``OriginRedirect.match``: the kind's target
fields, e.g. exchange and routing key, or topic; an empty field matches any
value) to a new target (``OriginRedirect.target``; an empty field keeps the
origin's value). Every requeue that goes to a letter's origin asks
:meth:`RedirectTable.resolve` first: one letter by hand, a bulk job, a
scheduled requeue, a retry policy, and the dry run that shows where letters
will go. A requeue to a target the user typed is never redirected.

The first enabled redirect of the letter's cluster (in id order) that matches
wins; redirects are not chained. A redirect with a vhost applies to that vhost
only; an empty vhost (and every redirect on kinds without vhosts) to all.

Admins add, enable, disable and delete redirects (``do_create_redirect``,
``do_update_redirect``, ``do_delete_redirect``; each audited as
``deadletters.redirect_create`` / ``_update`` / ``_delete``); every name is
checked as the broker client would check it before it is stored, by asking the
cluster's kind to build a message to it (``outgoing``), so this module never
switches on the kind. :func:`goes_to` says where a requeue to a letter's
origin would go now, for the letter page.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth.models import User as AuthUser
from django.http import HttpRequest

from brokers.base import ConfigError, NotSupported
from brokers.base.deadletters import (
    DeadLetters,
    InvalidLetter,
    RequeueTarget,
    StoredLetter,
    TargetField,
)
from brokers.base.validate import InvalidValue, utf8
from brokers.registry import kind_of, require
from dashboard.core import clusters, display
from dashboard.core.clusters import get_cluster_config, sync_cluster_rows
from dashboard.core.params import InvalidInput
from dashboard.core.roles import ADMIN
from dashboard.deadletters.common import User, audit, require_role
from dashboard.models import Cluster, OriginRedirect

NOTE_MAX = 500

display.register("redirect_enabled", "Enabled", display.OK)
display.register("redirect_disabled", "Disabled", display.MUTED)


@dataclass(frozen=True)
class Redirect:
    """One redirect as resolution reads it."""

    pk: int
    vhost: str
    match: Mapping[str, str]
    target: Mapping[str, str]

    def matches(self, vhost: str, origin: Mapping[str, str]) -> bool:
        if self.vhost and self.vhost != vhost:
            return False
        wanted = {k: str(v) for k, v in self.match.items() if v not in ("", None)}
        return bool(wanted) and all(str(origin.get(k, "")) == v for k, v in wanted.items())


@dataclass(frozen=True)
class Resolved:
    """Where a letter goes: ``target`` (None: its origin) and the redirect that chose it."""

    target: RequeueTarget | None
    redirect: Redirect | None = None
    origin: Mapping[str, str] = field(default_factory=dict)


@dataclass
class RedirectTable:
    """The enabled redirects of some clusters, by cluster slug (read once per batch)."""

    by_cluster: dict[str, list[Redirect]] = field(default_factory=dict)

    @classmethod
    def load(cls, slugs: Iterable[str] | None = None) -> RedirectTable:
        rows = OriginRedirect.objects.filter(enabled=True).select_related("cluster").order_by("pk")
        if slugs is not None:
            rows = rows.filter(cluster__slug__in=list(slugs))
        table: dict[str, list[Redirect]] = defaultdict(list)
        for row in rows:
            match = row.match if isinstance(row.match, dict) else {}
            target = row.target if isinstance(row.target, dict) else {}
            table[row.cluster.slug].append(Redirect(row.pk, row.vhost, match, target))
        return cls(dict(table))

    def resolve(
        self,
        deadletters: DeadLetters,
        slug: str,
        letter: StoredLetter,
        target: RequeueTarget | None = None,
    ) -> Resolved:
        """The target to send ``letter`` to: ``target`` when the user named one, else the
        first matching redirect's, else None (its origin)."""
        if target is not None:
            return Resolved(target)
        redirects = self.by_cluster.get(slug)
        if not redirects:
            return Resolved(None)
        try:
            origin = dict(deadletters.outgoing(letter, None, None).destination)
        except (InvalidLetter, InvalidValue):
            return Resolved(None)
        for redirect in redirects:
            if redirect.matches(letter.vhost, origin):
                chosen = {k: str(v) for k, v in redirect.target.items() if v not in ("", None)}
                return Resolved(deadletters.target_from({**origin, **chosen}), redirect, origin)
        return Resolved(None, None, origin)


# -- where a letter goes, for its page ------------------------------------------------


@dataclass(frozen=True)
class Route:
    """Where a requeue to a letter's origin goes now (``where``), and why.

    ``redirect``: the redirect that chose it (None: the origin itself), with its
    ``note``; ``origin``: the origin as people read it. ``problem``: why the
    letter cannot go anywhere (no known origin, a name the client refuses).
    """

    where: str = ""
    origin: str = ""
    redirect: int | None = None
    note: str = ""
    problem: str = ""


def goes_to(slug: str, letter: StoredLetter) -> Route:
    """The target a requeue to ``letter``'s origin would use now."""
    try:
        deadletters = _capability(slug)
    except (ConfigError, NotSupported) as exc:
        return Route(problem=exc.message)
    resolved = RedirectTable.load([slug]).resolve(deadletters, slug, letter)
    try:
        origin = deadletters.outgoing(letter, None, None).where
        where = deadletters.outgoing(letter, resolved.target, None).where
    except (InvalidLetter, InvalidValue) as exc:
        return Route(problem=str(exc))
    if resolved.redirect is None:
        return Route(where=where, origin=origin)
    note = OriginRedirect.objects.filter(pk=resolved.redirect.pk).values_list("note", flat=True)
    return Route(where, origin, resolved.redirect.pk, note.first() or "")


# -- the redirects, for the page and the API ---------------------------------------------


@dataclass(frozen=True)
class RedirectRow:
    """One stored redirect as the page and the API show it."""

    id: int
    cluster: str
    has_vhosts: bool
    vhost: str
    match: dict[str, str]
    target: dict[str, str]
    note: str
    enabled: bool
    created_by: str
    created_at: datetime

    @property
    def from_text(self) -> str:
        return _text(self.match, "any")

    @property
    def to_text(self) -> str:
        return _text(self.target, "as before")


def _text(fields: Mapping[str, str], empty: str) -> str:
    return " · ".join(f"{k} {v}" if v else f"{k} {empty}" for k, v in fields.items())


@dataclass(frozen=True)
class ClusterForm:
    """What the add form asks for on one cluster: its kind's target fields, a vhost or not."""

    slug: str
    name: str
    has_vhosts: bool
    fields: tuple[TargetField, ...]


def get_redirects() -> list[RedirectRow]:
    """Every redirect, newest first."""
    rows = OriginRedirect.objects.select_related("cluster", "created_by").order_by("-pk")
    return [_row(r) for r in rows]


def _row(row: OriginRedirect) -> RedirectRow:
    try:
        has_vhosts = kind_of(get_cluster_config(row.cluster.slug)).has_vhosts
    except ConfigError:
        has_vhosts = bool(row.vhost)
    return RedirectRow(
        id=row.pk,
        cluster=row.cluster.slug,
        has_vhosts=has_vhosts,
        vhost=row.vhost,
        match=_strings(row.match),
        target=_strings(row.target),
        note=row.note,
        enabled=row.enabled,
        created_by=row.created_by.get_username() if row.created_by else "",
        created_at=row.created_at,
    )


def _strings(value: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}


def get_cluster_forms() -> list[ClusterForm]:
    """Every configured cluster whose kind has dead letters, with the fields its form asks."""
    forms = []
    for config in clusters.get_cluster_configs():
        deadletters = kind_of(config).deadletters
        if deadletters is not None:
            has_vhosts = kind_of(config).has_vhosts
            forms.append(
                ClusterForm(config.slug, config.display_name, has_vhosts, deadletters.target_fields)
            )
    return forms


# -- writes ------------------------------------------------------------------------------


class InvalidRedirect(InvalidInput):
    """A redirect that cannot be stored; ``field`` names the form field (``from.exchange``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class RedirectNotFound(LookupError):
    """No redirect has that id."""


def _capability(slug: str) -> DeadLetters:
    config = get_cluster_config(slug)
    deadletters: DeadLetters = require(config, lambda k: k.deadletters, "dead-letter queues")
    return deadletters


def _probe(vhost: str) -> StoredLetter:
    """A letter with no origin: ``outgoing`` to a target checks only the target's names."""
    return StoredLetter(
        vhost=vhost,
        origin_exchange="",
        origin_routing_key="",
        origin_queue="",
        origin_topic="",
        origin_partition=None,
        is_task=False,
        key=None,
        headers={},
        properties={},
        body=b"",
    )


def checked_fields(
    deadletters: DeadLetters, vhost: str, fields: Mapping[str, Any], side: str
) -> dict[str, str]:
    """The kind's target fields of ``fields``, each checked as the broker client will.

    InvalidRedirect (naming ``<side>.<field>``) for an unknown field, a value that
    is not text, a name the client refuses, or no field set at all.
    """
    names = [f.name for f in deadletters.target_fields]
    for name in fields:
        if name not in names:
            raise InvalidRedirect(f"{side}.{name}", f"not a field here (use {', '.join(names)})")
    clean: dict[str, str] = {}
    for name in names:
        value = fields.get(name)
        if value is None:
            value = ""
        if not isinstance(value, str):
            raise InvalidRedirect(f"{side}.{name}", "must be text")
        clean[name] = value
    if not any(clean.values()):
        raise InvalidRedirect(f"{side}.{names[0]}", f"set at least one of {', '.join(names)}")
    try:
        deadletters.outgoing(_probe(vhost), deadletters.target_from(clean), None)
    except InvalidValue as exc:
        where = "vhost" if exc.field == "vhost" else f"{side}.{exc.field}"
        raise InvalidRedirect(where, exc.message.split(": ", 1)[-1]) from exc
    except InvalidLetter as exc:
        raise InvalidRedirect(f"{side}.{names[0]}", str(exc)) from exc
    return clean


def _note(note: object) -> str:
    if not isinstance(note, str):
        raise InvalidRedirect("note", "must be text")
    if len(note) > NOTE_MAX:
        raise InvalidRedirect("note", f"at most {NOTE_MAX} characters")
    try:
        utf8(note, "note", nul=False)
    except InvalidValue as exc:
        raise InvalidRedirect("note", exc.message.split(": ", 1)[-1]) from exc
    return note


def _target(pk: int) -> str:
    return f"redirect #{pk}"


async def do_create_redirect(
    *,
    user: User,
    slug: str,
    vhost: str,
    match: Mapping[str, Any],
    target: Mapping[str, Any],
    note: str = "",
    enabled: bool = True,
    request: HttpRequest | None = None,
) -> RedirectRow:
    """Store a redirect of ``slug``'s origins matching ``match`` to ``target`` (admin)."""
    action = "deadletters.redirect_create"
    await require_role(user, ADMIN, action=action, slug=slug, target="redirect", request=request)
    try:
        deadletters = _capability(slug)
    except (ConfigError, NotSupported) as exc:
        raise InvalidRedirect("cluster", exc.message) from exc
    if not isinstance(vhost, str):
        raise InvalidRedirect("vhost", "must be text")
    config = get_cluster_config(slug)
    vhost = vhost if kind_of(config).has_vhosts else ""
    clean_match = checked_fields(deadletters, vhost, match, "from")
    clean_target = checked_fields(deadletters, vhost, target, "to")
    note = _note(note)
    row = await sync_to_async(_create)(slug, vhost, clean_match, clean_target, note, enabled, user)
    await audit(
        action=action,
        user=user,
        slug=slug,
        target=_target(row.id),
        parameters={
            "redirect": row.id,
            "vhost": vhost,
            "match": clean_match,
            "target": clean_target,
            "note": note,
            "enabled": enabled,
        },
        request=request,
    )
    return row


def _create(
    slug: str,
    vhost: str,
    match: dict[str, str],
    target: dict[str, str],
    note: str,
    enabled: bool,
    user: User,
) -> RedirectRow:
    cluster = Cluster.objects.filter(slug=slug).first() or sync_cluster_rows()[slug]
    row = OriginRedirect.objects.create(
        cluster=cluster,
        vhost=vhost,
        match=match,
        target=target,
        note=note,
        enabled=enabled,
        created_by=user if isinstance(user, AuthUser) else None,
    )
    return _row(OriginRedirect.objects.select_related("cluster", "created_by").get(pk=row.pk))


def _get(pk: int) -> OriginRedirect:
    row = OriginRedirect.objects.select_related("cluster", "created_by").filter(pk=pk).first()
    if row is None:
        raise RedirectNotFound(f"no redirect #{pk}")
    return row


async def do_update_redirect(
    redirect_id: int,
    *,
    user: User,
    enabled: bool | None = None,
    note: str | None = None,
    request: HttpRequest | None = None,
) -> RedirectRow:
    """Enable, disable or re-note a redirect (admin)."""
    row = await sync_to_async(_get)(redirect_id)
    action = "deadletters.redirect_update"
    slug = row.cluster.slug
    target = _target(row.pk)
    await require_role(user, ADMIN, action=action, slug=slug, target=target, request=request)
    changes: dict[str, Any] = {}
    if enabled is not None:
        changes["enabled"] = bool(enabled)
    if note is not None:
        changes["note"] = _note(note)
    before = {k: getattr(row, k) for k in changes}
    if changes:
        await sync_to_async(OriginRedirect.objects.filter(pk=row.pk).update)(**changes)
    await audit(
        action=action,
        user=user,
        slug=slug,
        target=target,
        parameters={"redirect": row.pk, "before": before, "after": changes},
        request=request,
    )
    return await sync_to_async(lambda: _row(_get(row.pk)))()


async def do_delete_redirect(
    redirect_id: int, *, user: User, request: HttpRequest | None = None
) -> None:
    """Delete a redirect (admin); letters it sent keep its id in their audit entries."""
    row = await sync_to_async(_get)(redirect_id)
    action = "deadletters.redirect_delete"
    slug = row.cluster.slug
    target = _target(row.pk)
    await require_role(user, ADMIN, action=action, slug=slug, target=target, request=request)
    shown = await sync_to_async(_row)(row)
    await sync_to_async(OriginRedirect.objects.filter(pk=row.pk).delete)()
    await audit(
        action=action,
        user=user,
        slug=slug,
        target=target,
        parameters={
            "redirect": shown.id,
            "vhost": shown.vhost,
            "match": shown.match,
            "target": shown.target,
            "note": shown.note,
        },
        request=request,
    )
