"""Matching a retry policy's patterns against a captured letter: bounded, linear time.

A rule matches on any of five fields (an empty pattern matches anything):

* ``dlq``: the queue or topic the letter was captured from;
* ``origin``: where it came from, as the inbox shows it ("exchange orders /
  order.created", "topic orders", "queue orders"), or any one of its names
  alone (the exchange, the routing key, the queue or the topic);
* ``reason``, ``exception_class``, ``exception_message``.

Syntax per rule: a *glob* matches the whole value (``*`` any run of characters,
``?`` one character, ``[abc]`` / ``[!abc]`` one of / none of; everything else is
literal); a *regular expression* matches anywhere in the value (anchor it with
``^`` / ``$``), in RE2 syntax (no backreferences or lookaround).

Bounds: a pattern is at most ``MQB_DLQ_POLICY_MAX_PATTERN`` characters, and it
sees at most the first ``MQB_DLQ_POLICY_MATCH_CHARS`` characters of a value.
Every pattern runs on RE2 (``google-re2``), whose matching time is linear in
the value's length whatever the pattern: no catastrophic backtracking, so an
admin's pattern cannot stall capture.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import re2  # type: ignore[import-untyped]
from django.conf import settings

from dashboard.core.params import InvalidInput
from dashboard.deadletters.inbox import origin_label

# Model field -> what it matches.
MATCH_FIELDS = {
    "match_dlq": "dlq",
    "match_reason": "reason",
    "match_exception_class": "exception_class",
    "match_origin": "origin",
    "match_exception_message": "exception_message",
}
GLOB, REGEX = "glob", "regex"
_MAX_MEM = 8 << 20  # bytes RE2 may use per compiled pattern


class InvalidField(InvalidInput):
    """A pattern that cannot be used; ``field`` names it (the API answers 400 with it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def _options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False
    options.max_mem = _MAX_MEM
    return options


def glob_to_regex(glob: str) -> str:
    """RE2 syntax for a glob (anchoring is left to the caller: globs use ``fullmatch``)."""
    out: list[str] = []
    i, n = 0, len(glob)
    while i < n:
        c = glob[i]
        i += 1
        if c == "*":
            out.append(".*")
        elif c == "?":
            out.append(".")
        elif c == "[":
            end = glob.find("]", i + 1 if i < n and glob[i] in "!^" else i)
            if end < 0:
                out.append(re2.escape("["))
                continue
            inner = glob[i:end]
            i = end + 1
            negate = inner[:1] in ("!", "^")
            body = inner[1:] if negate else inner
            # Ranges (a-z) are kept; every other character is literal inside the class.
            escaped = "".join(ch if ch == "-" else re2.escape(ch) for ch in body)
            out.append(f"[{'^' if negate else ''}{escaped}]")
        else:
            out.append(re2.escape(c))
    return "".join(out)


@dataclass(frozen=True)
class Pattern:
    field: str
    glob: bool
    compiled: Any
    source: str

    def matches(self, value: str) -> bool:
        if self.glob:
            return self.compiled.fullmatch(value) is not None
        return self.compiled.search(value) is not None


def compile_pattern(field: str, syntax: str, pattern: str) -> Pattern | None:
    """The compiled pattern of ``field`` (None when empty: it matches anything)."""
    if not pattern:
        return None
    limit = int(settings.MQB_DLQ_POLICY_MAX_PATTERN)
    if len(pattern) > limit:
        raise InvalidField(field, f"a pattern is at most {limit} characters")
    if syntax not in (GLOB, REGEX):
        raise InvalidField("syntax", "is glob or regex")
    source = glob_to_regex(pattern) if syntax == GLOB else pattern
    try:
        compiled = re2.compile(source, _options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else "invalid"
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise InvalidField(field, f"not a valid regular expression ({text})") from None
    return Pattern(field, syntax == GLOB, compiled, source)


# Fields in the order a rule checks them: short values that many letters share first (a
# batch's answers for those are remembered), the exception message, long and unique, last.
_ORDER = {name: i for i, name in enumerate(MATCH_FIELDS)} | {"match_exception_message": 99}


def compile_patterns(syntax: str, patterns: Mapping[str, str]) -> tuple[Pattern, ...]:
    """Every non-empty pattern of ``patterns`` (model field -> pattern), compiled, in the
    order they are best checked in."""
    found = []
    for model_field, pattern in patterns.items():
        compiled = compile_pattern(model_field, syntax, pattern or "")
        if compiled is not None:
            found.append(compiled)
    return tuple(sorted(found, key=lambda p: _ORDER.get(p.field, 50)))


def letter_values(row: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """What a letter offers each pattern (``match_*`` field -> candidates), bounded."""
    limit = int(settings.MQB_DLQ_POLICY_MATCH_CHARS)

    def cut(value: Any) -> str:
        return str(value or "")[:limit]

    names = tuple(
        cut(row.get(name))
        for name in ("origin_exchange", "origin_routing_key", "origin_queue", "origin_topic")
        if row.get(name)
    )
    return {
        "match_dlq": (cut(row.get("dlq")),),
        "match_origin": (cut(origin_label(dict(row))), *names),
        "match_reason": (cut(row.get("reason")),),
        "match_exception_class": (cut(row.get("exception_class")),),
        "match_exception_message": message_value(row),
    }


def message_value(row: Mapping[str, Any], limit: int | None = None) -> tuple[str]:
    """What a letter offers ``match_exception_message`` patterns, bounded (``limit``:
    ``MQB_DLQ_POLICY_MATCH_CHARS`` unless given)."""
    if limit is None:
        limit = int(settings.MQB_DLQ_POLICY_MATCH_CHARS)
    return (str(row.get("exception_message") or "")[:limit],)


def all_match(
    patterns: tuple[Pattern, ...],
    values: Mapping[str, tuple[str, ...]],
    memo: dict[tuple[int, tuple[str, ...]], bool] | None = None,
) -> bool:
    """Whether every pattern matches one of its field's candidates. ``memo`` (one per
    batch) remembers the answers for values letters share (all but the message)."""
    for p in patterns:
        candidates = values[p.field]
        if memo is None or p.field == "match_exception_message":
            found = any(p.matches(v) for v in candidates)
        else:
            key = (id(p), candidates)
            known = memo.get(key)
            if known is None:
                known = memo[key] = any(p.matches(v) for v in candidates)
            found = known
        if not found:
            return False
    return True


class PatternIndex:
    """Every pattern of many rules, per field, in two RE2 sets (globs matching whole
    values, regular expressions anywhere): one pass over a value finds every pattern it
    matches, however many rules there are."""

    def __init__(self, pattern_lists: list[tuple[Pattern, ...]]) -> None:
        self.keys: list[tuple[int, ...]] = []
        grouped: dict[tuple[str, bool], list[tuple[int, Pattern]]] = {}
        key = 0
        for patterns in pattern_lists:
            mine = []
            for p in patterns:
                grouped.setdefault((p.field, p.glob), []).append((key, p))
                mine.append(key)
                key += 1
            self.keys.append(tuple(mine))
        self.sets: dict[str, list[tuple[Any, list[int]]]] = {}
        for (field, glob), members in grouped.items():
            made = re2.Set.FullMatchSet(_options()) if glob else re2.Set.SearchSet(_options())
            for _, p in members:
                made.Add(p.source)
            made.Compile()
            self.sets.setdefault(field, []).append((made, [k for k, _ in members]))

    def matched_field(self, field: str, candidates: tuple[str, ...]) -> set[int]:
        """The keys of ``field``'s patterns that one of ``candidates`` matches."""
        hits: set[int] = set()
        for made, keys in self.sets.get(field, ()):
            for value in candidates:
                for index in made.Match(value) or ():
                    hits.add(keys[index])
        return hits

    def matched(self, values: Mapping[str, tuple[str, ...]], skip: str = "") -> set[int]:
        """The keys of every pattern that one of its field's candidates matches (the
        patterns of field ``skip`` left out)."""
        found: set[int] = set()
        for name in self.sets:
            if name != skip:
                found |= self.matched_field(name, values[name])
        return found
