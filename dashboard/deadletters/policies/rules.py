"""Retry policies as admins edit them: checked input, ordered, audited, with their stats.

Every change (create, update, delete, move, mode) needs the admin role and
writes one audit entry, ``deadletters.policy_<change>``, whose parameters hold
the rule as it was (``before``) and as it is (``after``). Viewers and operators
read. A refused change is audited too.

Input (:class:`RuleInput`) comes from the page's form or the API. A bad value is
an :class:`~dashboard.deadletters.policies.matching.InvalidField` naming its
field (a 400 in the API). Stats (:func:`get_policies`) come from the decisions
recorded at capture and from the letters a rule scheduled: of those, *sent* are
the ones requeued since, *came back* the ones that failed again, and *waiting*
the ones still scheduled. Deleting (or disabling) a rule leaves its waiting
letters scheduled: they are still sent when due, as the page warns before the
delete; cancelling them is the inbox's (status *scheduled*).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Count, Max, Q
from django.http import Http404, HttpRequest
from django.utils import timezone

from dashboard.core.audit import record
from dashboard.core.clusters import sync_cluster_rows
from dashboard.core.params import check_texts
from dashboard.core.roles import ADMIN, has_role
from dashboard.deadletters.policies.matching import (
    MATCH_FIELDS,
    InvalidField,
    all_match,
    compile_patterns,
    letter_values,
)
from dashboard.models import AuditEntry, Cluster, DeadLetter, PolicyDecision, RetryPolicy

AnyUser = AbstractBaseUser | AnonymousUser
MAX_DELAY = 366 * 24 * 3600.0  # seconds: a year
MAX_ATTEMPTS = 1000
MODES = ("dry_run", "active", "disabled")
PREVIEW_SCAN = 20_000  # pending letters a "would match now" count looks at, newest first


@dataclass(frozen=True)
class RuleInput:
    """A rule as submitted; ``cluster`` is a slug, "" for every cluster."""

    name: str
    cluster: str = ""
    syntax: str = RetryPolicy.Syntax.GLOB.value
    match_dlq: str = ""
    match_origin: str = ""
    match_reason: str = ""
    match_exception_class: str = ""
    match_exception_message: str = ""
    action: str = RetryPolicy.Action.RETRY.value
    max_attempts: int = 3
    delay_seconds: float = 60.0
    factor: float = 2.0
    cap_seconds: float = 3600.0
    jitter: float = 0.1
    enabled: bool = True
    dry_run: bool = True

    @classmethod
    def from_form(cls, data: Mapping[str, Any]) -> RuleInput:
        """From a POSTed form: numbers parsed, errors naming the field; checkboxes as bools."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.type == "bool":
                values[f.name] = data.get(f.name) in ("on", "1", "true")
                continue
            raw = str(data.get(f.name, "") or "").strip()
            if f.type not in ("int", "float"):
                values[f.name] = raw
                continue
            if raw == "":
                raise InvalidField(f.name, "is required")
            try:
                values[f.name] = int(raw) if f.type == "int" else float(raw)
            except ValueError:
                raise InvalidField(f.name, f"{raw!r} is not a number") from None
        return cls(**values).checked()

    def checked(self) -> RuleInput:
        """This input, or an InvalidField naming the first bad value."""
        check_texts(asdict(self), InvalidField)
        if not self.name.strip():
            raise InvalidField("name", "is required")
        if len(self.name) > 200:
            raise InvalidField("name", "is at most 200 characters")
        if self.syntax not in RetryPolicy.Syntax.values:
            raise InvalidField("syntax", "is glob or regex")
        if self.action not in RetryPolicy.Action.values:
            raise InvalidField("action", "is retry or park")
        compile_patterns(self.syntax, self.patterns())
        if not 0 <= self.max_attempts <= MAX_ATTEMPTS:
            raise InvalidField("max_attempts", f"is between 0 and {MAX_ATTEMPTS}")
        numbers = (self.delay_seconds, self.factor, self.cap_seconds, self.jitter)
        if not all(math.isfinite(n) for n in numbers):
            raise InvalidField("delay_seconds", "delays and factors are finite numbers")
        if not 0 <= self.delay_seconds <= MAX_DELAY:
            raise InvalidField("delay_seconds", "is between 0 seconds and a year")
        if not 1 <= self.factor <= 100:
            raise InvalidField("factor", "is between 1 and 100")
        if not self.delay_seconds <= self.cap_seconds <= MAX_DELAY:
            raise InvalidField("cap_seconds", "is at least the delay and at most a year")
        if not 0 <= self.jitter <= 1:
            raise InvalidField("jitter", "is between 0 and 1")
        if self.cluster and self.cluster not in sync_cluster_rows():
            raise InvalidField("cluster", f"no cluster {self.cluster!r}")
        return self

    def patterns(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in MATCH_FIELDS}

    def model_values(self) -> dict[str, Any]:
        values = asdict(self)
        slug = values.pop("cluster")
        values["cluster"] = sync_cluster_rows()[slug] if slug else None
        return values


def snapshot(policy: RetryPolicy) -> dict[str, Any]:
    """A rule's values as the audit keeps them."""
    values: dict[str, Any] = {f.name: getattr(policy, f.name) for f in fields(RuleInput)
                              if f.name != "cluster"}  # fmt: skip
    values["cluster"] = policy.cluster.slug if policy.cluster_id and policy.cluster else ""
    values["position"] = policy.position
    return values


def mode_of(policy: RetryPolicy) -> str:
    if not policy.enabled:
        return "disabled"
    return "dry_run" if policy.dry_run else "active"


def _require_admin(user: AnyUser, action: str, target: str, request: HttpRequest | None) -> None:
    if has_role(user, ADMIN):
        return
    record(
        action=action,
        user=user,
        target=target,
        outcome=AuditEntry.Outcome.REFUSED,
        detail="needs the admin role",
        request=request,
    )
    raise PermissionDenied("this needs the admin role")


def _get(policy_id: int) -> RetryPolicy:
    if not 1 <= policy_id <= 2**63 - 1:
        # Beyond what a primary key holds (SQLite would overflow): no such policy.
        raise Http404(f"no retry policy #{policy_id}")
    policy = RetryPolicy.objects.select_related("cluster").filter(pk=policy_id).first()
    if policy is None:
        raise Http404(f"no retry policy #{policy_id}")
    return policy


def _audit(
    change: str,
    user: AnyUser,
    policy: RetryPolicy,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    request: HttpRequest | None,
    **extra: Any,
) -> None:
    record(
        action=f"deadletters.policy_{change}",
        user=user,
        cluster=policy.cluster if policy.cluster_id else None,
        target=f"retry policy #{policy.pk} {policy.name!r}",
        parameters={"before": before, "after": after, **extra},
        request=request,
    )


def do_create_policy(
    *, user: AnyUser, data: RuleInput, request: HttpRequest | None = None
) -> RetryPolicy:
    _require_admin(user, "deadletters.policy_create", f"retry policy {data.name!r}", request)
    data.checked()
    with transaction.atomic():
        last = RetryPolicy.objects.aggregate(m=Max("position"))["m"]
        policy = RetryPolicy.objects.create(
            **data.model_values(),
            position=0 if last is None else last + 1,
            created_by=user if isinstance(user, User) and user.is_authenticated else None,
        )
        _audit("create", user, policy, None, snapshot(policy), request)
    return policy


def do_update_policy(
    *, user: AnyUser, policy_id: int, data: RuleInput, request: HttpRequest | None = None
) -> RetryPolicy:
    _require_admin(user, "deadletters.policy_update", f"retry policy #{policy_id}", request)
    data.checked()
    with transaction.atomic():
        policy = _get(policy_id)
        before = snapshot(policy)
        for name, value in data.model_values().items():
            setattr(policy, name, value)
        policy.save()
        _audit("update", user, policy, before, snapshot(policy), request)
    return policy


def do_set_mode(
    *, user: AnyUser, policy_id: int, mode: str, request: HttpRequest | None = None
) -> RetryPolicy:
    """Dry run, active or disabled: the page's one-click switches."""
    _require_admin(user, "deadletters.policy_mode", f"retry policy #{policy_id}", request)
    if mode not in MODES:
        raise InvalidField("mode", f"is one of {', '.join(MODES)}")
    with transaction.atomic():
        policy = _get(policy_id)
        before = snapshot(policy)
        policy.enabled = mode != "disabled"
        if mode != "disabled":
            policy.dry_run = mode == "dry_run"
        policy.save()
        _audit("mode", user, policy, before, snapshot(policy), request)
    return policy


def still_scheduled(policy_id: int) -> int:
    """Letters the rule scheduled that are not sent yet: deleting or disabling the rule
    leaves them scheduled, and the dispatcher still sends them when due."""
    return DeadLetter.objects.filter(
        policy_id=policy_id, status=DeadLetter.Status.SCHEDULED
    ).count()


def do_delete_policy(*, user: AnyUser, policy_id: int, request: HttpRequest | None = None) -> int:
    """Its decisions stay (with the rule's name); its letters keep their state: those it
    scheduled are still sent when due (cancel them from the inbox to stop them). Returns
    how many were still scheduled (the audit entry says it too)."""
    _require_admin(user, "deadletters.policy_delete", f"retry policy #{policy_id}", request)
    with transaction.atomic():
        policy = _get(policy_id)
        before = snapshot(policy)
        waiting = still_scheduled(policy.pk)
        _audit("delete", user, policy, before, None, request, still_scheduled=waiting)
        policy.delete()
    return waiting


def do_move_policy(
    *, user: AnyUser, policy_id: int, to: int, request: HttpRequest | None = None
) -> RetryPolicy:
    """Put the rule at index ``to`` (0 = evaluated first) and number every rule again."""
    _require_admin(user, "deadletters.policy_move", f"retry policy #{policy_id}", request)
    with transaction.atomic():
        policy = _get(policy_id)
        before = snapshot(policy)
        order = [p for p in RetryPolicy.objects.select_for_update().order_by("position", "pk")]
        order = [p for p in order if p.pk != policy.pk]
        order.insert(max(0, min(to, len(order))), policy)
        now = timezone.now()
        for index, row in enumerate(order):
            if row.position != index or row.pk == policy.pk:
                # updated_at moves: the capture's rule cache sees the new order.
                RetryPolicy.objects.filter(pk=row.pk).update(position=index, updated_at=now)
        policy.refresh_from_db()
        _audit("move", user, policy, before, snapshot(policy), request)
    return policy


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyStats:
    matched: int = 0
    retries: int = 0
    parked: int = 0
    poison: int = 0
    would_retry: int = 0
    would_park: int = 0
    sent: int = 0
    came_back: int = 0
    waiting: int = 0  # letters it scheduled that are not sent yet
    last_at: Any = None


@dataclass(frozen=True)
class PolicyRow:
    policy: RetryPolicy
    mode: str
    stats: PolicyStats


_SENT = (DeadLetter.Status.REQUEUED, DeadLetter.Status.FAILED_AGAIN)


def stats_of(policy_ids: list[int]) -> dict[int, PolicyStats]:
    """Per rule: what its decisions were, and of the letters it scheduled, sent and came back."""
    retry, park, poison = (PolicyDecision.Action.RETRY, PolicyDecision.Action.PARK,
                           PolicyDecision.Action.POISON)  # fmt: skip
    decided = (
        PolicyDecision.objects.filter(policy_id__in=policy_ids)
        .values("policy_id")
        .annotate(
            matched=Count("id"),
            retries=Count("id", filter=Q(dry_run=False, action=retry)),
            parked=Count("id", filter=Q(dry_run=False, action=park)),
            poison=Count("id", filter=Q(dry_run=False, action=poison)),
            would_retry=Count("id", filter=Q(dry_run=True, action=retry)),
            would_park=Count("id", filter=Q(dry_run=True, action__in=(park, poison))),
            last_at=Max("at"),
        )
    )
    by_id = {row.pop("policy_id"): row for row in decided}
    waiting = DeadLetter.Status.SCHEDULED
    letters = (
        DeadLetter.objects.filter(
            policy_id__in=policy_ids, parked=False, status__in=(*_SENT, waiting)
        )
        .values("policy_id")
        .annotate(
            sent=Count("id", filter=Q(status__in=_SENT)),
            came_back=Count("id", filter=Q(status=DeadLetter.Status.FAILED_AGAIN)),
            waiting=Count("id", filter=Q(status=waiting)),
        )
    )
    for row in letters:
        by_id.setdefault(row.pop("policy_id"), {}).update(row)
    return {pk: PolicyStats(**by_id.get(pk, {})) for pk in policy_ids}


def get_policies() -> list[PolicyRow]:
    """Every rule, in evaluation order, with its mode and stats."""
    policies = list(RetryPolicy.objects.select_related("cluster").order_by("position", "pk"))
    stats = stats_of([p.pk for p in policies])
    return [PolicyRow(p, mode_of(p), stats[p.pk]) for p in policies]


def get_policy(policy_id: int) -> PolicyRow:
    policy = _get(policy_id)
    return PolicyRow(policy, mode_of(policy), stats_of([policy.pk])[policy.pk])


@dataclass(frozen=True)
class MatchCount:
    matched: int
    scanned: int
    complete: bool


def count_matching_now(data: RuleInput) -> MatchCount:
    """How many pending letters in the inbox the rule would match now (the newest
    ``PREVIEW_SCAN`` at most: ``complete`` says whether that was all of them)."""
    patterns = compile_patterns(data.syntax, data.patterns())
    letters = DeadLetter.objects.filter(status=DeadLetter.Status.PENDING)
    if data.cluster:
        letters = letters.filter(cluster__slug=data.cluster)
    limit = PREVIEW_SCAN
    rows = list(
        letters.order_by("-pk").values(
            "dlq", "origin_exchange", "origin_routing_key", "origin_queue", "origin_topic",
            "reason", "exception_class", "exception_message",
        )[: limit + 1]
    )  # fmt: skip
    complete = len(rows) <= limit
    rows = rows[:limit]
    matched = sum(1 for row in rows if all_match(patterns, letter_values(row)))
    return MatchCount(matched, len(rows), complete)


def decisions_of(letter_id: int) -> list[PolicyDecision]:
    """What rules did (or would have done) to one letter, oldest first."""
    return list(PolicyDecision.objects.filter(dead_letter_id=letter_id).order_by("at", "pk"))


def cluster_choices() -> list[Cluster]:
    return sorted(sync_cluster_rows().values(), key=lambda c: c.slug)
