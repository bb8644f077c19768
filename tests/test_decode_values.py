"""AMQP header values to JSON and back (``brokers.decode.values``)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from brokers.decode.values import MAX_DEPTH, from_json, to_json

MOMENT = datetime(2026, 12, 7, 6, 0, tzinfo=UTC)


class Name(str):
    pass


def test_every_amqp_type_goes_to_json_and_back() -> None:
    headers: dict[str, Any] = {
        "text": "plain é", "nul": "a\x00b", "int": -7, "big": 2**63 - 1, "bool": True,
        "none": None, "float": 1.5, "decimal": Decimal("1.50"), "time": MOMENT,
        "bytes": bytearray(b"\x00\xff"), "list": [1, "two", [3]], "table": {"a": {"b": 1}},
        "$odd": {"$bytes": "not a tag"}, "x-death": [{"count": 1, "time": MOMENT}],
    }  # fmt: skip
    stored = to_json(headers)
    assert stored["nul"] == {"$string": "YQBi"} and stored["time"] == {
        "$timestamp": MOMENT.isoformat()
    }
    assert stored["$odd"] == {"$table": {"$bytes": "not a tag"}}
    assert from_json(stored) == headers


def test_subclasses_tuples_and_odd_values_are_read_as_before() -> None:
    assert to_json({Name("k"): Name("v"), 1: (True, 2.0)}) == {"k": "v", "1": [True, 2.0]}
    assert type(to_json(Name("v"))) is Name  # a str subclass is kept as it is
    assert to_json(float("nan")) == {"$float": "nan"}


def test_a_table_nested_deeper_than_any_header_keeps_its_key_and_drops_its_value() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 5):
        deep = {"k": deep}
    stored = to_json(deep)
    for _ in range(MAX_DEPTH):
        stored = stored["k"]
    assert stored == {"$bytes": ""}
