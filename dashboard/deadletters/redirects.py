"""Redirects: requeues to an origin that was renamed or moved go to its new target.

An admin maps an old origin (``OriginRedirect.match``: the kind's target
fields, e.g. exchange and routing key, or topic; an empty field matches any
value) to a new target (``OriginRedirect.target``; an empty field keeps the
origin's value). Every requeue that goes to a letter's origin asks
:meth:`RedirectTable.resolve` first: one letter by hand, a bulk job, a
scheduled requeue, a retry policy, and the dry run that shows where letters
will go. A requeue to a target the user typed is never redirected.

The first enabled redirect of the letter's cluster (in id order) that matches
wins; redirects are not chained.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from brokers.base.deadletters import DeadLetters, InvalidLetter, RequeueTarget, StoredLetter
from brokers.base.validate import InvalidValue
from dashboard.models import OriginRedirect


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
