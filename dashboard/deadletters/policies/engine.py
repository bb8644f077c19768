"""Applying retry policies to letters as they are captured (in the capture transaction).

``store._insert`` calls :func:`decide_before_insert` on the batch's rows before
inserting them and :func:`record_at_capture` after the verdict and the loop guard.
The enabled rules are evaluated in ``position`` order:

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
still needing their message pattern match the letter's message (one RE2 set,
once per distinct message). The rules decide on the comebacks and poison capture
read from each message, and the acting rule's state (``scheduled``, ``due_at``,
``policy``, or ``parked``) goes into the row before the insert: no UPDATE.
After the verdict and the loop guard, one query per 500 matched rows reads their
ids, comebacks and poison (by unique key and the batch's ``captured_at``); one
prepared INSERT records the decisions. A letter whose comebacks or poison the
verdict's came-back chain changed in between (it was requeued by the dashboard
and came back without its requeue-count header) is decided again on the stored
values and updated: the loop guard still comes first.
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
_KEYS_PER_QUERY = 500  # capture keys per read-back query (SQLite's parameter limit)
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
_MATCHED_FIELDS = (*_SHARED_FIELDS, "exception_message")
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
        self,
        plan: Plan,
        row: dict[str, Any],
        limit: int | None = None,
        messages: dict[tuple[str, ...], set[int]] | None = None,
    ) -> list[CompiledRule]:
        """The rules of ``plan`` that match ``row``, message patterns included (``limit``:
        ``MQB_DLQ_POLICY_MATCH_CHARS``, read once per batch; ``messages``, one per batch,
        remembers the message patterns each distinct message matched)."""
        candidates, on_message = plan
        if not on_message:
            return [self.rules[i] for i in candidates]
        value = message_value(row, limit)
        hits = None if messages is None else messages.get(value)
        if hits is None:
            hits = self.index.matched_field(_MESSAGE, value)
            if messages is not None:
                messages[value] = hits
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


Matched = dict[tuple[str, str], dict[str, tuple[dict[str, Any], list[CompiledRule]]]]


def _match(cluster_id: int, rows: Sequence[dict[str, Any]]) -> Matched:
    """Per (vhost, DLQ) and capture key, the rows some enabled rule matches, with those
    rules in order (up to the first active one)."""
    matched: Matched = defaultdict(dict)
    if not rows:
        return matched
    rules = enabled_rules().for_cluster(cluster_id)
    if not rules.rules:
        return matched
    memo: Memo = {}
    messages: dict[tuple[str, ...], set[int]] = {}
    # Letters that share every matched field (the message too) share their rules.
    known: dict[tuple[Any, ...], list[CompiledRule]] = {}
    limit = int(settings.MQB_DLQ_POLICY_MATCH_CHARS)
    for r in rows:
        values = tuple(map(r.get, _MATCHED_FIELDS))
        found = known.get(values)
        if found is None:
            key = values[:-1]
            plan = memo.get(key)
            if plan is None:
                plan = memo[key] = rules.plan(r)
            found = known[values] = rules.finish(plan, r, limit, messages) if plan[0] else []
        if found:
            matched[(r.get("vhost", ""), r["dlq"])][r["capture_key"]] = (r, found)
    return matched


def apply_at_capture(cluster_id: int, rows: Sequence[dict[str, Any]]) -> int:
    """Evaluate the enabled rules, in order, on the already stored ``rows``; how many acted.

    Capture itself decides before the insert (:func:`decide_before_insert`); this is for
    rows stored some other way: it reads their state back and updates the letters."""
    matched = _match(cluster_id, rows)
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
                decisions.extend(_decisions(by_key[key][1], row, now, None, guard))
    if not decisions:
        return 0
    _record([(d, d.letter_id) for d in decisions], now)
    acting = [d for d in decisions if not d.dry_run]
    _act(acting)
    return len(acting)


@dataclass
class Decided:
    """What :func:`decide_before_insert` decided on a batch, for :func:`record_at_capture`."""

    cluster_id: int
    now: datetime
    matched: Matched
    # Per capture key: the decisions and the (came_back, poison) they were made on.
    decisions: dict[str, tuple[list[Decision], tuple[int, bool]]]


def _state(decisions: Sequence[Decision]) -> dict[str, Any]:
    """The letter's columns after ``decisions`` (those of the acting rule; none for dry runs)."""
    for d in decisions:
        if d.dry_run:
            continue
        if d.action == PolicyDecision.Action.RETRY and d.due_at is not None:
            return {"status": DeadLetter.Status.SCHEDULED.value, "due_at": d.due_at,
                    "parked": False, "policy_id": d.rule.id}  # fmt: skip
        return {"status": DeadLetter.Status.PENDING.value, "due_at": None,
                "parked": True, "policy_id": d.rule.id}  # fmt: skip
    return {}


def decide_before_insert(cluster_id: int, rows: Sequence[dict[str, Any]]) -> Decided | None:
    """Evaluate the enabled rules on ``rows`` before they are inserted, from the comebacks and
    poison capture read from each message, and write the acting rule's state (scheduled with
    its due time, or parked, and the rule) into the row, so the insert stores it: no UPDATE.
    :func:`record_at_capture`, after the verdict and the loop guard, records the decisions."""
    matched = _match(cluster_id, rows)
    if not matched:
        return None
    now = timezone.now()
    guard: dict[bool, bool] = {}
    decided: dict[str, tuple[list[Decision], tuple[int, bool]]] = {}
    for by_key in matched.values():
        for key, (row, rules) in by_key.items():
            seen = (int(row.get("came_back") or 0), bool(row.get("poison")))
            state = {"id": 0, "came_back": seen[0], "poison": seen[1]}
            found = _decisions(rules, state, now, None, guard)
            row.update(_state(found))
            decided[key] = (found, seen)
    return Decided(cluster_id, now, matched, decided)


def record_at_capture(decided: Decided | None, captured_at: datetime) -> int:
    """Record the decisions of :func:`decide_before_insert` on the rows just inserted (those
    stamped ``captured_at``, so a row an ignored conflict kept is left alone); a row whose
    comebacks or poison the verdict and loop guard changed since is decided again on its
    stored values and updated. How many letters a rule acted on."""
    if decided is None:
        return 0
    ops = connection.ops
    table = ops.quote_name(DeadLetter._meta.db_table)
    stamp = ops.adapt_datetimefield_value(captured_at)
    recorded: list[tuple[Decision, int]] = []
    changed: list[Decision] = []
    guard: dict[bool, bool] = {}
    with connection.cursor() as cursor:
        for (vhost, dlq), by_key in decided.matched.items():
            keys = list(by_key)
            for start in range(0, len(keys), _KEYS_PER_QUERY):
                chunk = keys[start : start + _KEYS_PER_QUERY]
                cursor.execute(
                    f"SELECT id, capture_key, came_back, poison FROM {table}"  # noqa: S608 (the table name and placeholders only)
                    " WHERE cluster_id = %s AND vhost = %s AND dlq = %s AND captured_at = %s"
                    f" AND capture_key IN ({', '.join(['%s'] * len(chunk))})",
                    [decided.cluster_id, vhost, dlq, stamp, *chunk],
                )
                for pk, key, came_back, poison in cursor.fetchall():
                    found, seen = decided.decisions[key]
                    if (came_back, bool(poison)) != seen:
                        row = {"id": pk, "came_back": came_back, "poison": bool(poison)}
                        found = _decisions(by_key[key][1], row, decided.now, None, guard)
                        changed.extend(d for d in found if not d.dry_run)
                    recorded.extend((d, pk) for d in found)
    if not recorded:
        return 0
    _record(recorded, decided.now)
    _restate(changed)
    return sum(1 for d, _ in recorded if not d.dry_run)


def _restate(acting: list[Decision]) -> None:
    """Set the letters of ``acting`` decisions to their state again (decided anew)."""
    if not acting:
        return
    ops = connection.ops
    table = ops.quote_name(DeadLetter._meta.db_table)
    values = []
    for d in acting:
        state = _state([d])
        values.append((state["status"], ops.adapt_datetimefield_value(state["due_at"]),
                       state["parked"], state["policy_id"], d.letter_id))  # fmt: skip
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {table} SET status = %s, due_at = %s, parked = %s, policy_id = %s"  # noqa: S608 (the table name and placeholders only)
            " WHERE id = %s",
            values,
        )


def _record(decisions: list[tuple[Decision, int]], now: datetime) -> None:
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
                    letter_id,
                    at,
                    d.action,
                    d.attempt,
                    adapt(d.due_at),
                    d.dry_run,
                )
                for d, letter_id in decisions
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
