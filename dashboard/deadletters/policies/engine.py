"""Applying retry policies to letters as they are captured (in the capture transaction).

``store._insert`` calls :func:`apply_at_capture` after the verdict and the loop
guard, so each new row's ``came_back`` and ``poison`` are final. The enabled
rules are evaluated in ``position`` order:

* a matching **dry-run** rule records a ``PolicyDecision`` with ``dry_run`` (what
  it would have done) and evaluation goes on;
* the first matching **active** rule acts, and evaluation stops. Its attempt is
  the letter's ``came_back`` (times it was requeued and came back). Action
  *retry*: while the attempt is below ``max_attempts`` and the loop guard allows
  it (never a poison letter), the letter becomes ``scheduled`` with
  ``due_at = now + min(cap, delay * factor ** attempt)`` (+/- ``jitter`` of it,
  in one of ``JITTER_SLOTS`` steps) and ``policy`` set; the worker's dispatcher
  sends it when due. Otherwise it is parked (``parked``, ``policy`` set; kept
  pending in the inbox, flagged); a poison letter's decision says *poison*.
  Action *park* parks at once.

Work per batch: one query reading the new rows' ids, comebacks and poison (the
matched values come from the rows capture passes in), one ``bulk_create`` of
the decisions, one UPDATE per rule that parked, and one per rule, attempt and
jitter slot that scheduled. Patterns on values a batch's letters share (DLQ,
origin, reason, class) are matched once per batch, and each value is matched
against every rule's patterns at once (RE2 sets, ``matching.PatternIndex``).
Compiled rules are cached per process; each batch checks one cheap aggregate
(count and latest ``updated_at`` of the rules) and compiles again only when
it changed.
"""

from __future__ import annotations

import random
import threading
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max
from django.utils import timezone

from dashboard.deadletters.loop_guard import may_retry_automatically
from dashboard.deadletters.policies.matching import (
    MATCH_FIELDS,
    Pattern,
    PatternIndex,
    all_match,
    compile_patterns,
    letter_values,
)
from dashboard.models import DeadLetter, PolicyDecision, RetryPolicy

_ROW_FIELDS = ("id", "capture_key", "came_back", "poison", "status")
_rng = random.Random()  # noqa: S311 (spreading retries, not secrets)
JITTER_SLOTS = 8


@dataclass(frozen=True)
class CompiledRule:
    id: int
    name: str
    dry_run: bool
    cluster_id: int | None
    action: str
    max_attempts: int
    delay_seconds: float
    factor: float
    cap_seconds: float
    jitter: float
    patterns: tuple[Pattern, ...]

    def applies_to(self, cluster_id: int, values: dict[str, tuple[str, ...]]) -> bool:
        if self.cluster_id is not None and self.cluster_id != cluster_id:
            return False
        return all_match(self.patterns, values)

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds until retry ``attempt`` (0 = first): capped exponential, +/- jitter.

        The jitter picks one of ``JITTER_SLOTS`` evenly spaced offsets: letters still
        spread out, and a batch's scheduled letters take a few UPDATEs, not one each."""
        try:
            base = self.delay_seconds * self.factor**attempt
        except OverflowError:
            base = self.cap_seconds
        seconds = min(self.cap_seconds, base)
        if self.jitter:
            slot = (rng or _rng).randrange(JITTER_SLOTS)
            seconds *= 1 + self.jitter * (2 * slot / (JITTER_SLOTS - 1) - 1)
        return max(0.0, seconds)


def compile_rule(policy: RetryPolicy) -> CompiledRule:
    patterns = {name: getattr(policy, name) for name in MATCH_FIELDS}
    return CompiledRule(
        id=policy.pk,
        name=policy.name,
        dry_run=policy.dry_run,
        cluster_id=policy.cluster_id,
        action=policy.action,
        max_attempts=policy.max_attempts,
        delay_seconds=policy.delay_seconds,
        factor=policy.factor,
        cap_seconds=policy.cap_seconds,
        jitter=policy.jitter,
        patterns=compile_patterns(policy.syntax, patterns),
    )


@dataclass(frozen=True)
class Rules:
    """The enabled rules in order, and the index of all their patterns."""

    rules: tuple[CompiledRule, ...] = ()
    index: PatternIndex = field(default_factory=lambda: PatternIndex([]))

    def applying(
        self,
        cluster_id: int,
        row: dict[str, Any],
        memo: dict[tuple[str, tuple[str, ...]], frozenset[int]] | None = None,
    ) -> list[CompiledRule]:
        """The rules that match ``row``, in order."""
        found = self.index.matched(letter_values(row), memo)
        return [
            rule
            for rule, keys in zip(self.rules, self.index.keys, strict=True)
            if (rule.cluster_id is None or rule.cluster_id == cluster_id)
            and all(k in found for k in keys)
        ]


class _Cache:
    """The enabled rules, compiled, with the version they were read at."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: tuple[Any, ...] | None = None
        self.rules = Rules()

    def current(self) -> Rules:
        seen = RetryPolicy.objects.aggregate(n=Count("id"), at=Max("updated_at"))
        version = (seen["n"], seen["at"])
        with self.lock:
            if version == self.version:
                return self.rules
        rules = []
        for policy in RetryPolicy.objects.filter(enabled=True).order_by("position", "pk"):
            try:
                rules.append(compile_rule(policy))
            except ValueError:
                # Saved before a bound was lowered: skipped until an admin fixes it.
                continue
        made = Rules(tuple(rules), PatternIndex([r.patterns for r in rules]))
        with self.lock:
            self.version, self.rules = version, made
        return made


_cache = _Cache()


def enabled_rules() -> Rules:
    return _cache.current()


@dataclass(frozen=True)
class Decision:
    rule: CompiledRule
    letter_id: int
    action: str
    attempt: int
    due_at: datetime | None
    dry_run: bool


def decide(
    rules: Sequence[CompiledRule] | Rules,
    cluster_id: int,
    row: dict[str, Any],
    now: datetime,
    rng: random.Random | None = None,
    memo: dict[tuple[str, tuple[str, ...]], frozenset[int]] | None = None,
) -> list[Decision]:
    """The decisions of ``rules`` (in order) on one letter: dry runs, then the one that acts."""
    if isinstance(rules, Rules):
        matching = rules.applying(cluster_id, row, memo)
    else:
        values = letter_values(row)
        matching = [rule for rule in rules if rule.applies_to(cluster_id, values)]
    found: list[Decision] = []
    for rule in matching:
        attempt = int(row["came_back"])
        retry = rule.action == RetryPolicy.Action.RETRY
        poison = retry and not may_retry_automatically(DeadLetter(poison=row["poison"]))
        if retry and attempt < rule.max_attempts and not poison:
            action = PolicyDecision.Action.RETRY
            due: datetime | None = now + timedelta(seconds=rule.delay(attempt, rng))
        else:
            park = PolicyDecision.Action.PARK
            action = PolicyDecision.Action.POISON if poison else park
            due = None
        found.append(Decision(rule, row["id"], action, attempt, due, rule.dry_run))
        if not rule.dry_run:
            break
    return found


def apply_at_capture(cluster_id: int, rows: Sequence[dict[str, Any]]) -> int:
    """Evaluate the enabled rules, in order, on the newly stored ``rows``; how many acted."""
    if not rows:
        return 0
    rules = enabled_rules()
    if not rules.rules:
        return 0
    # Ids, comebacks and poison as the verdict and loop guard left them, found by the whole
    # unique key (cluster, vhost, DLQ, capture key); the matched values come from ``rows``.
    by_queue: dict[tuple[str, str], dict[str, dict[str, Any]]] = defaultdict(dict)
    for r in rows:
        by_queue[(r.get("vhost", ""), r["dlq"])][r["capture_key"]] = r
    now = timezone.now()
    decisions: list[Decision] = []
    memo: dict[tuple[str, tuple[str, ...]], frozenset[int]] = {}
    for (vhost, dlq), by_key in by_queue.items():
        # No filter on status here: it would tempt the planner to the status index.
        stored = DeadLetter.objects.filter(
            cluster_id=cluster_id, vhost=vhost, dlq=dlq, capture_key__in=list(by_key)
        ).values_list(*_ROW_FIELDS)
        for pk, key, came_back, poison, status in stored:
            if status == DeadLetter.Status.PENDING:
                row = {**by_key[key], "id": pk, "came_back": came_back, "poison": poison}
                decisions.extend(decide(rules, cluster_id, row, now, memo=memo))
    if not decisions:
        return 0
    PolicyDecision.objects.bulk_create(
        [
            PolicyDecision(
                policy_id=d.rule.id,
                policy_name=d.rule.name,
                dead_letter_id=d.letter_id,
                at=now,
                action=d.action,
                attempt=d.attempt,
                due_at=d.due_at,
                dry_run=d.dry_run,
            )
            for d in decisions
        ]
    )
    acting = [d for d in decisions if not d.dry_run]
    parked: dict[int, list[int]] = defaultdict(list)
    scheduled: dict[tuple[int, datetime], list[int]] = defaultdict(list)
    for d in acting:
        if d.action == PolicyDecision.Action.RETRY and d.due_at is not None:
            scheduled[(d.rule.id, d.due_at)].append(d.letter_id)
        else:
            parked[d.rule.id].append(d.letter_id)
    for rule_id, ids in parked.items():
        DeadLetter.objects.filter(pk__in=ids).update(parked=True, policy_id=rule_id)
    for (rule_id, due_at), ids in scheduled.items():
        DeadLetter.objects.filter(pk__in=ids).update(
            status=DeadLetter.Status.SCHEDULED, due_at=due_at, policy_id=rule_id
        )
    return len(acting)
