"""Retry policy matching and decisions as pure logic: globs, regular expressions, bounds,
invalid patterns, backoff, the order of rules, dry runs and the loop guard."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from dashboard.deadletters.policies.engine import JITTER_SLOTS, CompiledRule, Memo, Rules, decide
from dashboard.deadletters.policies.matching import (
    InvalidField,
    PatternIndex,
    all_match,
    compile_pattern,
    compile_patterns,
    glob_to_regex,
    letter_values,
)
from dashboard.deadletters.policies.rules import RuleInput

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def row(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": 7, "dlq": "orders.dlq", "origin_exchange": "orders", "origin_routing_key":
        "order.created", "origin_queue": "", "origin_topic": "", "reason": "rejected",
        "exception_class": "OrderRejected", "exception_message": "order 8 has no customer",
        "came_back": 0, "poison": False,
    }  # fmt: skip
    base.update(fields)
    return base


def rule(n: int = 1, *, dry_run: bool = False, syntax: str = "glob", **kw: object) -> CompiledRule:
    patterns = {k: str(v) for k, v in kw.items() if k.startswith("match_")}
    values: dict[str, object] = dict(
        id=n, name=f"rule {n}", dry_run=dry_run, cluster_id=None, action="retry",
        max_attempts=3, delay_seconds=60.0, factor=2.0, cap_seconds=600.0, jitter=0.0,
    )  # fmt: skip
    values.update({k: v for k, v in kw.items() if not k.startswith("match_")})
    return CompiledRule(**values, patterns=compile_patterns(syntax, patterns))  # type: ignore[arg-type]


def matches(syntax: str, field: str, pattern: str, **fields: object) -> bool:
    return all_match(compile_patterns(syntax, {field: pattern}), letter_values(row(**fields)))


def test_it_matches_globs_against_the_whole_value() -> None:
    assert matches("glob", "match_dlq", "orders.*")
    assert matches("glob", "match_dlq", "*.dlq")
    assert not matches("glob", "match_dlq", "orders")  # whole value, not a part
    assert matches("glob", "match_dlq", "order?.dlq")
    assert matches("glob", "match_exception_class", "Order[RX]ejected")
    assert not matches("glob", "match_exception_class", "Order[!R]ejected")
    assert not matches("glob", "match_dlq", "orders+dlq")  # "." and "+" are literal
    assert glob_to_regex("a.b*") == r"a\.b.*"


def test_it_matches_regular_expressions_anywhere() -> None:
    assert matches("regex", "match_exception_message", r"order \d+ has no")
    assert not matches("regex", "match_exception_message", r"^has no")
    assert matches("regex", "match_reason", "^(rejected|expired)$")


def test_the_origin_matches_as_the_inbox_shows_it_or_by_any_of_its_names() -> None:
    assert matches("glob", "match_origin", "exchange orders / order.*")
    assert matches("glob", "match_origin", "orders")
    assert matches("glob", "match_origin", "order.created")
    kafka = {"origin_exchange": "", "origin_routing_key": "", "origin_topic": "payments"}
    assert matches("glob", "match_origin", "topic pay*", **kafka)
    assert not matches("glob", "match_origin", "payments")


def test_empty_patterns_match_everything() -> None:
    assert compile_pattern("match_dlq", "glob", "") is None
    assert all_match((), letter_values(row()))


def test_an_invalid_pattern_names_its_field() -> None:
    with pytest.raises(InvalidField) as raised:
        compile_pattern("match_reason", "regex", "(unclosed")
    assert raised.value.field == "match_reason"
    assert "not a valid regular expression" in raised.value.message
    with pytest.raises(InvalidField, match="match_dlq"):
        compile_pattern("match_dlq", "regex", r"(a)\1")  # backreferences: not linear


def test_patterns_and_values_are_bounded(settings) -> None:
    settings.MQB_DLQ_POLICY_MAX_PATTERN = 10
    with pytest.raises(InvalidField, match="at most 10 characters"):
        compile_pattern("match_exception_message", "glob", "x" * 11)
    settings.MQB_DLQ_POLICY_MATCH_CHARS = 50
    long_message = "a" * 100 + "TAIL"
    assert not matches("regex", "match_exception_message", "TAIL", exception_message=long_message)
    assert matches("regex", "match_exception_message", "^a{50}$", exception_message=long_message)


def test_a_catastrophic_pattern_runs_in_linear_time(settings) -> None:
    settings.MQB_DLQ_POLICY_MATCH_CHARS = 4096
    started = time.perf_counter()
    found = matches("regex", "match_exception_message", "^(x+x+)+y$", exception_message="x" * 4096)
    # A backtracking engine needs longer than the age of the universe here.
    assert not found and time.perf_counter() - started < 5


def test_retry_delays_back_off_up_to_the_cap_with_jitter() -> None:
    plain = rule()
    assert [plain.delay(n) for n in range(5)] == [60.0, 120.0, 240.0, 480.0, 600.0]
    jittered = rule(jitter=0.5)
    delays = [jittered.delay(0, random.Random(n)) for n in range(200)]
    # Evenly spaced slots from -50% to +50%: letters spread, in few distinct due times.
    assert min(delays) == 30 and max(delays) == 90 and len(set(delays)) == JITTER_SLOTS


def test_the_first_active_rule_acts_and_dry_runs_before_it_record() -> None:
    rules = [
        rule(1, match_dlq="payments*"),
        rule(2, dry_run=True, match_exception_class="Order*"),
        rule(3, match_reason="rejected"),
        rule(4, match_dlq="*"),
    ]
    found = decide(rules, 1, row(came_back=1), NOW)
    assert [(d.rule.id, d.action, d.dry_run) for d in found] == [
        (2, "retry", True), (3, "retry", False)
    ]  # fmt: skip
    assert found[1].due_at == NOW + timedelta(seconds=120)
    assert found[1].attempt == 1


def test_it_parks_after_max_attempts_and_never_retries_poison() -> None:
    [parked] = decide([rule(max_attempts=3)], 1, row(came_back=3), NOW)
    assert (parked.action, parked.due_at) == ("park", None)
    [poison] = decide([rule(max_attempts=9)], 1, row(came_back=2, poison=True), NOW)
    assert (poison.action, poison.due_at) == ("poison", None)
    [at_once] = decide([rule(action="park")], 1, row(), NOW)
    assert at_once.action == "park"


def test_a_rule_for_one_cluster_leaves_the_others_alone() -> None:
    assert decide([rule(cluster_id=2)], 1, row(), NOW) == []
    assert len(decide([rule(cluster_id=2)], 2, row(), NOW)) == 1


def test_rule_input_refuses_bad_values_naming_the_field() -> None:
    with pytest.raises(InvalidField, match=r"^name"):
        RuleInput(name=" ").checked()
    with pytest.raises(InvalidField, match=r"^factor"):
        RuleInput(name="r", factor=0.5).checked()
    with pytest.raises(InvalidField, match=r"^cap_seconds"):
        RuleInput(name="r", delay_seconds=100, cap_seconds=10).checked()
    with pytest.raises(InvalidField, match=r"^max_attempts"):
        RuleInput.from_form({"name": "r", "max_attempts": "many", "delay_seconds": "1"})
    with pytest.raises(InvalidField, match=r"^match_origin"):
        RuleInput(name="r", syntax="regex", match_origin="[").checked()


def test_the_pattern_index_finds_what_each_rule_alone_finds() -> None:
    rules = [
        rule(1, match_dlq="payments*"),
        rule(2, syntax="regex", match_exception_message="no (customer|stock)", dry_run=True),
        rule(3, match_origin="exchange orders / *", match_reason="expired"),
        rule(4, match_exception_class="Order?ejected", match_dlq="orders.*"),
        rule(5, syntax="regex", match_origin="^order\\.", cluster_id=2),
        rule(6, syntax="regex", match_exception_message="timed out", match_reason="expired"),
        rule(7, match_exception_message="*stock*", dry_run=True),
        rule(8),
    ]
    indexed = Rules(tuple(rules), PatternIndex([r.patterns for r in rules]))
    rows = [
        row(),
        row(dlq="payments.dlq"),
        row(reason="expired", exception_message="timed out"),
        row(
            reason="expired",
            origin_exchange="b",
            exception_class="X",
            exception_message="timed out",
        ),
        row(exception_class="OrderXejected", exception_message="no stock"),
        row(exception_class="X", exception_message="no stock"),
        row(origin_exchange="", origin_routing_key="", origin_topic="order.events"),
    ]
    memo: Memo = {}
    for cluster_id in (1, 2):
        for one in rows * 2:  # the second time, the shared fields' answers are remembered
            alone = decide(rules, cluster_id, one, NOW, random.Random(1))
            together = decide(indexed, cluster_id, one, NOW, random.Random(1), memo)
            assert [(d.rule.id, d.action, d.dry_run) for d in together] == [
                (d.rule.id, d.action, d.dry_run) for d in alone
            ]
    assert [d.rule.id for d in decide(indexed, 1, rows[4], NOW, memo=memo)] == [2, 4]
    assert [d.rule.id for d in decide(indexed, 1, rows[3], NOW, memo=memo)] == [6]
    assert [d.rule.id for d in decide(indexed, 1, rows[5], NOW, memo=memo)] == [2, 7, 8]
    assert [d.rule.id for d in decide(indexed, 2, rows[6], NOW, memo=memo)] == [2, 4]
