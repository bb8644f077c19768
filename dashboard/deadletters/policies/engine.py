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

Work per batch (capture keeps at least 90% of its rate with ten rules): nothing
when no enabled rule is for the batch's cluster. Otherwise the rules' patterns
on the fields letters share (DLQ, origin, reason, class) are matched once per
distinct combination of them, against every rule at once (RE2 sets,
``matching.PatternIndex``), giving the rules a letter may match; only those
still needing their message pattern match the letter's message (one RE2 set).
Then one query reads the matched rows' ids, comebacks and poison (the values
matched come from the rows capture passes in), one prepared INSERT records the
decisions and one prepared UPDATE per letter acted on sets its state.
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
from functools import cached_property, lru_cache
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from dashboard.deadletters.loop_guard import may_retry_automatically
from dashboard.deadletters.policies.matching import (
    MATCH_FIELDS,
    Pattern,
    PatternIndex,
    all_match,
    compile_patterns,
    letter_values,
    message_value,
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


# The row fields every pattern but the exception message's reads: letters of a batch
# mostly share them, so their answer is worked out once per distinct combination.
_SHARED_FIELDS = (
    "dlq", "origin_exchange", "origin_routing_key", "origin_queue", "origin_topic",
    "reason", "exception_class",
)  # fmt: skip
_MESSAGE = "match_exception_message"
Plan = tuple[tuple[int, ...], bool]
Memo = dict[tuple[Any, ...], Plan]


@dataclass(frozen=True)
class Rules:
    """The enabled rules in order, and the index of all their patterns."""

    rules: tuple[CompiledRule, ...] = ()
    index: PatternIndex = field(default_factory=lambda: PatternIndex([]))
    _clusters: dict[int, Rules] = field(default_factory=dict, compare=False, repr=False)

    def for_cluster(self, cluster_id: int) -> Rules:
        """The rules that may act on ``cluster_id``'s letters (for every cluster or that one)."""
        found = self._clusters.get(cluster_id)
        if found is None:
            mine = tuple(r for r in self.rules if r.cluster_id in (None, cluster_id))
            found = (
                self
                if mine == self.rules
                else Rules(mine, PatternIndex([r.patterns for r in mine]))
            )
            self._clusters[cluster_id] = found
        return found

    @cached_property
    def _keys(self) -> tuple[list[frozenset[int]], list[frozenset[int]]]:
        """Per rule, the keys of its patterns on shared fields and on the message."""
        shared: list[frozenset[int]] = []
        message: list[frozenset[int]] = []
        for rule, keys in zip(self.rules, self.index.keys, strict=True):
            on_message = {
                k for k, p in zip(keys, rule.patterns, strict=True) if p.field == _MESSAGE
            }
            shared.append(frozenset(keys) - on_message)
            message.append(frozenset(on_message))
        return shared, message

    def plan(self, row: dict[str, Any]) -> Plan:
        """The rules ``row``'s shared fields allow (by position, in order), and whether any
        of them still needs its message patterns. Evaluation stops at an active rule, so
        the list ends at the first active one that has no message pattern."""
        shared_keys, message_keys = self._keys
        found = self.index.matched(letter_values(row), skip=_MESSAGE)
        candidates: list[int] = []
        for i, keys in enumerate(shared_keys):
            if keys <= found:
                candidates.append(i)
                if not self.rules[i].dry_run and not message_keys[i]:
                    break
        return tuple(candidates), any(message_keys[i] for i in candidates)

    def finish(
        self, plan: Plan, row: dict[str, Any], limit: int | None = None
    ) -> list[CompiledRule]:
        """The rules of ``plan`` that match ``row``, message patterns included (``limit``:
        ``MQB_DLQ_POLICY_MATCH_CHARS``, read once per batch)."""
        candidates, on_message = plan
        if not on_message:
            return [self.rules[i] for i in candidates]
        hits = self.index.matched_field(_MESSAGE, message_value(row, limit))
        message_keys = self._keys[1]
        return [self.rules[i] for i in candidates if message_keys[i] <= hits]

    def applying(
        self, cluster_id: int, row: dict[str, Any], memo: Memo | None = None
    ) -> list[CompiledRule]:
        """The rules that match ``row``, in order (up to the first active one at least). ``memo``
        (one per batch) remembers the plan per distinct combination of shared fields."""
        mine = self.for_cluster(cluster_id)
        if not mine.rules:
            return []
        if memo is None:
            return mine.finish(mine.plan(row), row)
        key = (cluster_id, *map(row.get, _SHARED_FIELDS))
        plan = memo.get(key)
        if plan is None:
            plan = memo[key] = mine.plan(row)
        if not plan[0]:
            return []
        return mine.finish(plan, row)


class _Cache:
    """The enabled rules, compiled, with the version they were read at."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.version: tuple[Any, ...] | None = None
        self.rules = Rules()

    def current(self) -> Rules:
        ops = connection.ops
        table = ops.quote_name(RetryPolicy._meta.db_table)
        with connection.cursor() as cursor:
            # Every batch asks: a plain statement, not an ORM query compiled each time.
            cursor.execute(f"SELECT COUNT(*), MAX({ops.quote_name('updated_at')}) FROM {table}")  # noqa: S608 (the table and column names only)
            version = tuple(cursor.fetchone() or ())
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
    memo: Memo | None = None,
) -> list[Decision]:
    """The decisions of ``rules`` (in order) on one letter: dry runs, then the one that acts."""
    if isinstance(rules, Rules):
        matching = rules.applying(cluster_id, row, memo)
    else:
        values = letter_values(row)
        matching = [rule for rule in rules if rule.applies_to(cluster_id, values)]
    return _decisions(matching, row, now, rng, {})


def _decisions(
    matching: Sequence[CompiledRule],
    row: dict[str, Any],
    now: datetime,
    rng: random.Random | None,
    guard: dict[bool, bool],
) -> list[Decision]:
    """What ``matching`` (the rules that match ``row``, in order) do to it. ``guard``
    remembers the loop guard's answer per poison flag (what it looks at) for a batch."""
    found: list[Decision] = []
    attempt = int(row["came_back"])
    for rule in matching:
        retry = rule.action == RetryPolicy.Action.RETRY
        poison = False
        if retry:
            flag = bool(row["poison"])
            if flag not in guard:
                guard[flag] = may_retry_automatically(DeadLetter(poison=flag))
            poison = not guard[flag]
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
    rules = enabled_rules().for_cluster(cluster_id)
    if not rules.rules:
        return 0
    memo: Memo = {}
    limit = int(settings.MQB_DLQ_POLICY_MATCH_CHARS)
    matched: dict[tuple[str, str], dict[str, list[CompiledRule]]] = defaultdict(dict)
    for r in rows:
        key = tuple(map(r.get, _SHARED_FIELDS))
        plan = memo.get(key)
        if plan is None:
            plan = memo[key] = rules.plan(r)
        if not plan[0]:
            continue
        found = rules.finish(plan, r, limit)
        if found:
            matched[(r.get("vhost", ""), r["dlq"])][r["capture_key"]] = found
    if not matched:
        return 0
    # Ids, comebacks and poison as the verdict and loop guard left them, of the matched
    # rows only, found by the whole unique key (cluster, vhost, DLQ, capture key).
    now = timezone.now()
    decisions: list[Decision] = []
    guard: dict[bool, bool] = {}
    for (vhost, dlq), by_key in matched.items():
        # No filter on status here: it would tempt the planner to the status index.
        stored = DeadLetter.objects.filter(
            cluster_id=cluster_id, vhost=vhost, dlq=dlq, capture_key__in=list(by_key)
        ).values_list(*_ROW_FIELDS)
        for pk, key, came_back, poison, status in stored:
            if status == DeadLetter.Status.PENDING:
                row = {"id": pk, "came_back": came_back, "poison": poison}
                decisions.extend(_decisions(by_key[key], row, now, None, guard))
    if not decisions:
        return 0
    _record(decisions, now)
    acting = [d for d in decisions if not d.dry_run]
    _act(acting)
    return len(acting)


def _record(decisions: list[Decision], now: datetime) -> None:
    """One prepared INSERT of every decision (the ORM's ``bulk_create`` prepares each value
    of each row in Python: most of what recording cost)."""
    ops = connection.ops
    table = ops.quote_name(PolicyDecision._meta.db_table)
    columns = ("policy_id", "policy_name", "dead_letter_id", "at", "action", "attempt",
               "due_at", "dry_run")  # fmt: skip
    sql = (
        f"INSERT INTO {table} ({', '.join(ops.quote_name(c) for c in columns)})"  # noqa: S608 (the table, columns and placeholders only)
        f" VALUES ({', '.join(['%s'] * len(columns))})"
    )
    # A batch's due times take a few values (jitter slots): each is adapted once.
    adapt = lru_cache(maxsize=None)(ops.adapt_datetimefield_value)
    at = adapt(now)
    with connection.cursor() as cursor:
        cursor.executemany(
            sql,
            [
                (
                    d.rule.id,
                    d.rule.name,
                    d.letter_id,
                    at,
                    d.action,
                    d.attempt,
                    adapt(d.due_at),
                    d.dry_run,
                )
                for d in decisions
            ],
        )


def _act(acting: list[Decision]) -> None:
    """The acting rules' decisions on the letters: one prepared UPDATE run per letter
    scheduled, one per letter parked."""
    if not acting:
        return
    ops = connection.ops
    table = ops.quote_name(DeadLetter._meta.db_table)
    # A batch's due times take a few values (jitter slots): each is adapted once.
    adapt = lru_cache(maxsize=None)(ops.adapt_datetimefield_value)
    scheduled = [
        (DeadLetter.Status.SCHEDULED.value, adapt(d.due_at), d.rule.id, d.letter_id)
        for d in acting
        if d.action == PolicyDecision.Action.RETRY and d.due_at is not None
    ]
    parked = [
        (True, d.rule.id, d.letter_id)
        for d in acting
        if not (d.action == PolicyDecision.Action.RETRY and d.due_at is not None)
    ]
    with connection.cursor() as cursor:
        if scheduled:
            cursor.executemany(
                f"UPDATE {table} SET status = %s, due_at = %s, policy_id = %s WHERE id = %s",  # noqa: S608 (the table name and placeholders only)
                scheduled,
            )
        if parked:
            cursor.executemany(
                f"UPDATE {table} SET parked = %s, policy_id = %s WHERE id = %s",  # noqa: S608 (the table name and placeholders only)
                parked,
            )
