"""Alert rules as the engine uses them: compiled once per rule version, indexed by kind.

A rule's pattern is matched against an entity's name: a queue's name (without its
vhost), a topic, a consumer group id, a DLQ's name, a cluster's slug, a broker
node's name, or a job's kind. Syntax
``exact`` compares the whole name; ``glob`` and ``regex`` use the retry policies'
bounded RE2 matcher (``dashboard.deadletters.policies.matching``: linear time, a
pattern at most ``MQB_DLQ_POLICY_MAX_PATTERN`` characters, names cut to
``MQB_DLQ_POLICY_MATCH_CHARS``); an empty pattern matches every entity.

Cost: :func:`get_rulebook` reads the enabled rules (one query, and one for their
channels) and rebuilds the index only when a rule changed. The index holds, per
kind, a dict of exact names and two RE2 sets (globs, regular expressions), so an
entity's name is matched against every rule of its kind in one pass; the answer is
remembered per name until the rules change, so a steady sample of 10,000 queues
costs dictionary look-ups.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import re2  # type: ignore[import-untyped]
from django.conf import settings

from dashboard.core.params import InvalidInput
from dashboard.deadletters.policies.matching import GLOB, REGEX, compile_pattern
from dashboard.models import AlertRule

EXACT = "exact"
COMPARE: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}
# Kinds whose condition is fixed whatever the rule's comparison: nobody consumes,
# no group member, or a yes/no state (1: the cluster cannot be sampled, messages
# wait and nothing is delivered, a node is down or in alarm, a job failed).
FIXED = {
    AlertRule.Kind.NO_CONSUMERS: ("lte", 0.0),
    AlertRule.Kind.GROUP_EMPTY: ("lte", 0.0),
    AlertRule.Kind.CLUSTER_UNAVAILABLE: ("gte", 1.0),
    AlertRule.Kind.NOT_DELIVERING: ("gte", 1.0),
    AlertRule.Kind.NODE_DOWN: ("gte", 1.0),
    AlertRule.Kind.BROKER_ALARM: ("gte", 1.0),
    AlertRule.Kind.JOB_FAILED: ("gte", 1.0),
}
_MEMO_LIMIT = 200_000


def validate_pattern(syntax: str, pattern: str) -> None:
    """Raise ``InvalidField`` (a 400) for a pattern the engine could not use."""
    if syntax != EXACT:
        compile_pattern("pattern", syntax, pattern)


@dataclass(frozen=True)
class CompiledRule:
    pk: int
    name: str
    kind: str
    cluster_id: int | None
    comparison: str
    threshold: float
    resolve_threshold: float
    for_seconds: float
    repeat_seconds: float
    channel_ids: tuple[int, ...]
    window_seconds: float = 300.0

    def holds(self, value: float) -> bool:
        """The firing condition."""
        return COMPARE[self.comparison](value, self.threshold)

    def still_holds(self, value: float) -> bool:
        """Whether a firing alert stays firing (hysteresis: the resolve threshold)."""
        return COMPARE[self.comparison](value, self.resolve_threshold)


def compiled(row: dict[str, Any], channel_ids: tuple[int, ...]) -> CompiledRule:
    comparison, threshold = FIXED.get(row["kind"], (row["comparison"], row["threshold"]))
    resolve = row["resolve_threshold"]
    if row["kind"] in FIXED or resolve is None:
        resolve = threshold
    for_seconds = max(0.0, float(row["for_seconds"]))
    if row["kind"] == AlertRule.Kind.CELERY_WORKER_GONE:
        # The value is how long the worker has not been seen: its for-seconds is the
        # threshold, and the alert fires as soon as it is passed.
        comparison, threshold, resolve, for_seconds = "gt", for_seconds, for_seconds, 0.0
    return CompiledRule(
        pk=row["pk"],
        name=row["name"],
        kind=row["kind"],
        cluster_id=row["cluster_id"],
        comparison=comparison,
        threshold=float(threshold),
        resolve_threshold=float(resolve),
        for_seconds=for_seconds,
        repeat_seconds=max(0.0, float(row["repeat_seconds"])),
        channel_ids=channel_ids,
        window_seconds=max(1.0, float(row.get("window_seconds") or 300.0)),
    )


@dataclass
class KindIndex:
    """Every rule of one kind: exact names, patterns matching anything, two RE2 sets."""

    everything: list[int] = field(default_factory=list)
    exact: dict[str, list[int]] = field(default_factory=dict)
    sets: list[tuple[Any, list[int]]] = field(default_factory=list)
    memo: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def matching(self, name: str) -> tuple[int, ...]:
        known = self.memo.get(name)
        if known is not None:
            return known
        cut = name[: int(settings.MQB_DLQ_POLICY_MATCH_CHARS)]
        found = [*self.everything, *self.exact.get(name, ())]
        for made, keys in self.sets:
            found.extend(keys[i] for i in made.Match(cut) or ())
        if len(self.memo) >= _MEMO_LIMIT:
            self.memo.clear()
        answer = self.memo[name] = tuple(sorted(found))
        return answer


def _options() -> Any:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = 64 << 20
    return options


class Rulebook:
    """The enabled rules, compiled, and per kind the index that finds the ones matching a name."""

    def __init__(self, rows: list[dict[str, Any]], channels: dict[int, tuple[int, ...]]) -> None:
        self.rules = [compiled(row, channels.get(row["pk"], ())) for row in rows]
        self.by_pk = {rule.pk: rule for rule in self.rules}
        self.kinds: dict[str, KindIndex] = {}
        sources: dict[tuple[str, str], list[tuple[int, str]]] = {}
        for i, row in enumerate(rows):
            index = self.kinds.setdefault(row["kind"], KindIndex())
            pattern, syntax = row["pattern"], row["syntax"]
            if not pattern:
                index.everything.append(i)
            elif syntax == EXACT:
                index.exact.setdefault(pattern, []).append(i)
            elif syntax in (GLOB, REGEX):
                try:
                    source = compile_pattern("pattern", syntax, pattern)
                except InvalidInput:
                    continue  # refused when saved; a rule edited around that never matches
                if source is not None:
                    sources.setdefault((row["kind"], syntax), []).append((i, source.source))
        for (kind, syntax), members in sources.items():
            made = (
                re2.Set.FullMatchSet(_options())
                if syntax == GLOB
                else re2.Set.SearchSet(_options())
            )
            for _, source_text in members:
                made.Add(source_text)
            made.Compile()
            self.kinds[kind].sets.append((made, [i for i, _ in members]))

    def matching(self, kind: str, name: str, cluster_id: int) -> list[CompiledRule]:
        """The rules of ``kind`` for this cluster whose pattern matches ``name``."""
        index = self.kinds.get(kind)
        if index is None:
            return []
        rules = self.rules
        return [
            rules[i]
            for i in index.matching(name)
            if rules[i].cluster_id is None or rules[i].cluster_id == cluster_id
        ]


_FIELDS = (
    "pk",
    "name",
    "kind",
    "cluster_id",
    "syntax",
    "pattern",
    "comparison",
    "threshold",
    "resolve_threshold",
    "for_seconds",
    "repeat_seconds",
    "window_seconds",
    "updated_at",
)
_cache: tuple[tuple[Any, ...], Rulebook] | None = None


def get_rulebook() -> Rulebook:
    """The enabled rules, rebuilt only when one of them (or its channels) changed."""
    global _cache
    rows = list(AlertRule.objects.filter(enabled=True).order_by("pk").values(*_FIELDS))
    through = AlertRule.channels.through.objects.filter(
        alertrule__enabled=True, alertchannel__enabled=True
    ).values_list("alertrule_id", "alertchannel_id")
    channels: dict[int, list[int]] = {}
    for rule_id, channel_id in through:
        channels.setdefault(rule_id, []).append(channel_id)
    frozen = {pk: tuple(sorted(ids)) for pk, ids in channels.items()}
    signature = (tuple(tuple(row.values()) for row in rows), tuple(sorted(frozen.items())))
    if _cache is None or _cache[0] != signature:
        _cache = (signature, Rulebook(rows, frozen))
    return _cache[1]
