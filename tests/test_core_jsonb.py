"""orjson on the jsonb hot paths gives what the standard library gives."""

from __future__ import annotations

import json

import pytest

from dashboard.core.jsonb import encode_jsonb, load_json

TEXTS = [
    b'{"a": [1, -2, 3.5, true, false, null], "\\u00fc": "\\u00e9 \\ud83d\\udca5 \\u0001"}',
    b"18446744073709551615",  # 64 bits: both read the same integer
    b"1180591620717411303424",  # beyond 64 bits: orjson would read a float
    b'{"n": -92233720368547758090, "s": "order 123456789012345678901"}',
    b"1e400",  # orjson refuses it; json.loads reads infinity
    b'"\\ud800"',  # orjson refuses a lone surrogate; json.loads keeps it
    b"[]",
]


@pytest.mark.parametrize("text", TEXTS)
def test_it_reads_what_json_loads_reads(text: bytes) -> None:
    assert repr(load_json(text)) == repr(json.loads(text))
    assert repr(load_json(text.decode())) == repr(json.loads(text))


def test_it_encodes_what_json_dumps_encodes_once_parsed() -> None:
    value = {"a": [1, 2**63, -(2**63), 1.5, None, True], "ü": "é\x00\U0001f4a5", "": {}}
    encoded = encode_jsonb(value)
    assert encoded[:1] == b"\x01" and json.loads(encoded[1:]) == value
    # What orjson refuses goes through the standard library, byte for byte.
    for odd in ({"big": 2**70}, {1: "int key"}, "a\udc80b"):
        assert encode_jsonb(odd) == b"\x01" + json.dumps(odd).encode()
