"""The shared body/header decoder: pure functions, no broker or database needed."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import FrozenInstanceError
from datetime import UTC, datetime
from decimal import Decimal

import msgpack
import pytest

from brokers.decode import (
    MAX_FIELDS,
    CeleryTask,
    DeathEvent,
    Decoded,
    HeaderValue,
    ProtoField,
    decode_body,
    decode_headers,
    decode_x_death,
    hexdump,
    parse_protobuf,
)
from brokers.decode.render import render


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | 0x80 if n else low)
        if not n:
            return bytes(out)


def _ld(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


# -- trivial cases -------------------------------------------------------------


def test_it_tells_no_body_from_an_empty_one():
    assert decode_body(None) == Decoded("null", 0)
    empty = decode_body(b"")
    assert (empty.format, empty.size, empty.text, empty.truncated) == ("empty", 0, "", False)


def test_it_returns_frozen_results():
    decoded = decode_body(b"hello")
    with pytest.raises(FrozenInstanceError):
        decoded.text = "x"  # type: ignore[misc]


def test_it_accepts_bytearray_and_memoryview():
    assert decode_body(bytearray(b'{"a": 1}')).value == {"a": 1}
    assert decode_body(memoryview(b"hi")).text == "hi"


# -- JSON ----------------------------------------------------------------------


# Leaves whose JSON text differs by type or needs escaping: what json.dumps writes for each.
ODD_LEAVES = [
    "", "plain", 'quote " and \\ backslash', "tab\tnew\nline\x00\x1f\x7f", "héllo ☃ 𝄞",
    "\ud800 lone", "\u2028\u2029", 0, -1, 2**63, -(2**70), 10**300, 0.1, -0.0, 1e16, 1e-07,
    1.7976931348623157e308, float("nan"), float("inf"), float("-inf"), True, False, None,
]  # fmt: skip


def test_render_writes_every_leaf_and_key_as_json_dumps_does():
    value = {str(leaf): [leaf, {"k": leaf}] for leaf in ODD_LEAVES}
    text, truncated = render(value, 1_000_000)
    assert not truncated
    assert text == json.dumps(value, indent=2, ensure_ascii=False)
    compact, _ = render(value, 1_000_000, indent=None)
    assert compact == json.dumps(value, ensure_ascii=False)


def test_it_pretty_prints_a_json_object_like_json_dumps():
    value = {"b": [1, 2.5, {"c": None}], "a": True, "e": {}, "f": [], "u": "héllo ☃"}
    decoded = decode_body(json.dumps(value).encode())
    assert decoded.format == "json"
    assert decoded.value == value
    assert decoded.text == json.dumps(value, indent=2, ensure_ascii=False)
    assert decoded.text.index('"b"') < decoded.text.index('"a"')  # keys not sorted
    assert not decoded.truncated


def test_it_detects_a_json_array_with_surrounding_whitespace():
    decoded = decode_body(b"\n  [1, 2]  \n")
    assert decoded.format == "json"
    assert decoded.value == [1, 2]
    assert decoded.text == "[\n  1,\n  2\n]"


def test_it_keeps_unicode_and_drops_a_bom():
    decoded = decode_body('\ufeff{"name": "Zoë 日本 😀"}'.encode())
    assert decoded.format == "json"
    assert decoded.value == {"name": "Zoë 日本 😀"}
    assert "Zoë 日本 😀" in decoded.text


def test_it_replaces_lone_surrogates_that_could_not_be_sent_as_utf8():
    decoded = decode_body(b'{"a": "x\\ud800y", "b": "\\ud83d\\ude00"}')
    assert decoded.value == {"a": "x\ufffdy", "b": "😀"}
    decoded.text.encode("utf-8")


def test_it_treats_json_scalars_as_json_only_by_content_type():
    assert decode_body(b"42").format == "text"
    decoded = decode_body(b"42", content_type="application/json")
    assert (decoded.format, decoded.value) == ("json", 42)
    decoded = decode_body(b'"hi"', content_type="application/problem+json; charset=utf-8")
    assert (decoded.format, decoded.value, decoded.text) == ("json", "hi", '"hi"')


def test_it_falls_back_with_a_note_when_json_content_type_lies():
    decoded = decode_body(b"{not json", content_type="application/json")
    assert decoded.format == "text"
    assert decoded.text == "{not json"
    assert "content type says JSON" in decoded.note
    assert decoded.value is None

    binary = decode_body(b"\xff\xfe\x00", content_type="application/json")
    assert binary.format == "binary"
    assert "content type says JSON" in binary.note
    assert "invalid UTF-8 at byte 0" in binary.note


def test_it_shows_text_that_only_looks_like_json():
    decoded = decode_body(b"[INFO] service started")
    assert decoded.format == "text"
    assert decoded.text == "[INFO] service started"


def test_it_survives_hostile_json_nesting():
    decoded = decode_body(b"[" * 100_000)
    assert decoded.format == "text"
    assert decoded.truncated
    assert len(decoded.text) == 65536
    assert "nested too deeply" in decoded.note

    closed = decode_body(b"[" * 100_000 + b"]" * 100_000, content_type="application/json")
    assert closed.format == "text"
    assert "nested too deeply" in closed.note


def test_it_renders_deep_but_parseable_json_without_recursion():
    depth = min(sys.getrecursionlimit() - 200, 800)
    decoded = decode_body(b"[" * depth + b"]" * depth, limit=1000)
    assert decoded.format == "json"
    assert decoded.truncated
    assert len(decoded.text) == 1000


def test_it_cuts_pretty_json_at_the_limit():
    value = [{"id": i, "name": "x" * 10} for i in range(1000)]
    decoded = decode_body(json.dumps(value).encode(), limit=500)
    assert decoded.format == "json"
    assert decoded.value == value  # parsed in full: the body is under 1 MiB
    assert decoded.truncated
    assert decoded.text == json.dumps(value, indent=2)[:500]


# -- MessagePack ---------------------------------------------------------------


def test_it_decodes_msgpack_by_content_type():
    body = msgpack.packb({"a": 1, "b": [b"\x00\x01", "s"], 5: None, b"k": 1.5})
    decoded = decode_body(body, content_type="application/x-msgpack")
    assert decoded.format == "msgpack"
    assert decoded.value == {
        "a": 1,
        "b": [{"$bytes": "AAE="}, "s"],
        "5": None,
        "k": 1.5,
    }
    assert '"$bytes": "AAE="' in decoded.text
    assert "MessagePack detected by content type" in decoded.note
    json.dumps(decoded.value)  # JSON-safe


def test_it_decodes_msgpack_scalars_and_extensions_by_content_type():
    assert decode_body(msgpack.packb(7), content_type="application/msgpack").value == 7
    ext = msgpack.packb([msgpack.ExtType(5, b"xy"), msgpack.Timestamp(0)])
    decoded = decode_body(ext, content_type="application/vnd.msgpack")
    assert decoded.value == [{"$ext": 5, "$bytes": "eHk="}, "1970-01-01T00:00:00+00:00"]


def test_it_detects_msgpack_from_the_bytes():
    body = msgpack.packb({"user": "zoë", "ids": [1, 2, 3], "raw": b"\xff"})
    decoded = decode_body(body)
    assert decoded.format == "msgpack"
    assert decoded.value == {"user": "zoë", "ids": [1, 2, 3], "raw": {"$bytes": "/w=="}}
    assert "detected from the bytes" in decoded.note


def test_it_does_not_guess_msgpack_with_trailing_bytes_or_for_scalars():
    assert decode_body(msgpack.packb([1, 2]) + b"\x00").format != "msgpack"
    assert decode_body(msgpack.packb(12345)).format != "msgpack"


def test_it_falls_back_with_a_note_when_msgpack_content_type_lies():
    decoded = decode_body(b"\xc1\xc1", content_type="application/msgpack")
    assert decoded.format == "binary"
    assert "content type says MessagePack" in decoded.note


def test_it_survives_hostile_msgpack_nesting():
    decoded = decode_body(b"\x91" * 100_000 + b"\x01", content_type="application/msgpack")
    assert decoded.format == "binary"
    assert "does not parse" in decoded.note


# -- Celery --------------------------------------------------------------------

TASK_ID = "8f3e2a4c-1d2b-4e5f-9a8b-7c6d5e4f3a2b"


def _celery_headers() -> dict[str, object]:
    return {
        "lang": "py",
        "task": "proj.tasks.add",
        "id": TASK_ID,
        "shadow": None,
        "eta": None,
        "expires": "2030-01-01T00:00:00+00:00",
        "group": None,
        "group_index": None,
        "retries": 1,
        "timelimit": [None, None],
        "root_id": TASK_ID,
        "parent_id": None,
        "argsrepr": "(2, 3)",
        "kwargsrepr": "{}",
        "origin": "gen1@host",
        "ignore_result": False,
    }


EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


def test_it_recognises_a_celery_protocol_2_task():
    body = json.dumps([[2, 3], {}, EMBED]).encode()
    decoded = decode_body(
        body,
        content_type="application/json",
        content_encoding="utf-8",
        headers=_celery_headers(),
    )
    assert decoded.format == "celery"
    assert decoded.celery == CeleryTask(
        name="proj.tasks.add",
        id=TASK_ID,
        args=(2, 3),
        kwargs={},
        retries=1,
        eta=None,
        expires=datetime(2030, 1, 1, tzinfo=UTC),
        root_id=TASK_ID,
        parent_id=None,
        group=None,
        origin="gen1@host",
        protocol=2,
        argsrepr="(2, 3)",
        kwargsrepr="{}",
    )
    assert decoded.value == [[2, 3], {}, EMBED]
    assert decoded.text.startswith("[\n  [\n    2,")


def test_it_recognises_a_celery_task_in_msgpack_with_kafka_style_headers():
    body = msgpack.packb([["a"], {"x": b"\x00"}, EMBED])
    headers = [("task", b"proj.tasks.echo"), ("id", TASK_ID.encode()), ("eta", None)]
    decoded = decode_body(
        body, content_type="application/x-msgpack", content_encoding="binary", headers=headers
    )
    assert decoded.format == "celery"
    assert decoded.celery is not None
    assert decoded.celery.name == "proj.tasks.echo"
    assert decoded.celery.args == ("a",)
    assert decoded.celery.kwargs == {"x": {"$bytes": "AA=="}}


def test_it_names_a_pickled_celery_task_without_unpickling_it():
    decoded = decode_body(
        b"\x80\x04\x95\x10\x00\x00\x00\x00\x00\x00\x00]\x94.",
        content_type="application/x-python-serialize",
        content_encoding="binary",
        headers=_celery_headers(),
    )
    assert decoded.format == "celery"
    assert decoded.celery is not None
    assert decoded.celery.name == "proj.tasks.add"
    assert decoded.celery.args is None and decoded.celery.kwargs is None
    assert decoded.celery.argsrepr == "(2, 3)"
    assert "not decoded" in decoded.note
    assert decoded.text.startswith("00000000  80 04")


def test_it_ignores_celery_headers_when_the_body_has_another_shape():
    decoded = decode_body(b'{"hello": 1}', headers={"task": "x", "id": "y"})
    assert decoded.format == "json"
    assert decoded.celery is None
    assert "not [args, kwargs, embed]" in decoded.note


def test_it_recognises_a_celery_protocol_1_task():
    body = {
        "task": "proj.tasks.add",
        "id": TASK_ID,
        "args": [2, 3],
        "kwargs": {"z": 1},
        "retries": 0,
        "eta": "2024-05-01T12:00:00",
        "expires": None,
        "utc": True,
        "callbacks": None,
        "errbacks": None,
        "timelimit": [None, None],
        "taskset": "group-1",
        "chord": None,
    }
    for raw, content_type in (
        (json.dumps(body).encode(), "application/json"),
        (msgpack.packb(body), "application/x-msgpack"),
        (json.dumps(body).encode(), None),
    ):
        decoded = decode_body(raw, content_type=content_type)
        assert decoded.format == "celery"
        task = decoded.celery
        assert task is not None
        assert (task.name, task.id, task.args, task.kwargs) == (
            "proj.tasks.add",
            TASK_ID,
            (2, 3),
            {"z": 1},
        )
        assert task.protocol == 1
        assert task.retries == 0
        assert task.eta == datetime(2024, 5, 1, 12, tzinfo=UTC)
        assert task.group == "group-1"


# -- Protobuf ------------------------------------------------------------------


def test_it_decodes_the_classic_protobuf_varint():
    decoded = decode_body(b"\x08\x96\x01")
    assert decoded.format == "protobuf"
    assert decoded.protobuf == (ProtoField(1, 0, 150, zigzag=75),)
    assert decoded.protobuf[0].kind == "varint"
    assert decoded.text == "1 <varint> 150  zigzag=75"
    assert decoded.value == [{"field": 1, "kind": "varint", "value": 150, "zigzag": 75}]


def test_it_decodes_a_hand_built_protobuf_message():
    inner = b"\x08\x2a" + _ld(2, b"inner text")
    body = (
        b"\x08\x96\x01"
        + _ld(2, inner)
        + _ld(3, "héllo".encode())
        + b"\x25\x00\x00\x80\x3f"  # field 4 fixed32 1.0f
        + b"\x29\x00\x00\x00\x00\x00\x00\xf0\x3f"  # field 5 fixed64 1.0
        + b"\x30"
        + _varint(2**64 - 1)  # field 6 int64 -1
        + _ld(7, b"\x00\xff\x10")  # field 7 bytes
        + _ld(1000, b"")  # field 1000, empty
    )
    decoded = decode_body(body)
    assert decoded.format == "protobuf"
    fields = decoded.protobuf
    assert fields is not None
    assert [(f.number, f.kind) for f in fields] == [
        (1, "varint"),
        (2, "message"),
        (3, "string"),
        (4, "fixed32"),
        (5, "fixed64"),
        (6, "varint"),
        (7, "bytes"),
        (1000, "string"),
    ]
    assert fields[1].value == (ProtoField(1, 0, 42, zigzag=21), ProtoField(2, 2, "inner text"))
    assert fields[2].value == "héllo"
    assert (fields[3].value, fields[3].as_float) == (0x3F800000, 1.0)
    assert (fields[4].value, fields[4].as_float) == (0x3FF0000000000000, 1.0)
    assert fields[5].signed == -1
    assert fields[6].value == b"\x00\xff\x10"
    assert fields[7].value == ""
    assert '2 <message> {\n  1 <varint> 42  zigzag=21\n  2 <string> "inner text"\n}' in decoded.text
    assert "7 <bytes> 00 ff 10" in decoded.text
    json.dumps(decoded.value)


def test_it_trusts_a_protobuf_content_type_over_the_text_check():
    body = _ld(4, b"hello world")  # b'"\x0bhello world': \x0b is whitespace, so it reads as text
    assert decode_body(body).format == "text"
    decoded = decode_body(body, content_type="application/x-protobuf")
    assert decoded.format == "protobuf"
    assert decoded.protobuf == (ProtoField(4, 2, "hello world"),)
    fallback = decode_body(b"not protobuf", content_type="application/protobuf")
    assert fallback.format == "text"
    assert "content type says Protobuf" in fallback.note


def test_it_rejects_implausible_protobuf():
    assert parse_protobuf(b"\x00\x01") is None  # field number 0
    assert parse_protobuf(b"\x0b\x01") is None  # wire type 3 (group)
    assert parse_protobuf(b"\x0a\x05abc") is None  # length runs past the end
    assert parse_protobuf(b"\x08") is None  # truncated varint
    assert parse_protobuf(b"\x08" + b"\xff" * 11) is None  # varint longer than 10 bytes
    assert parse_protobuf(b"") is None  # no field at all
    assert decode_body(b"\x0b\x01").format == "binary"


def test_it_bounds_protobuf_depth_on_hostile_nesting():
    body = b"\x08\x01"
    for _ in range(3000):
        body = _ld(2, body)
    decoded = decode_body(body)
    assert decoded.format == "protobuf"
    level, fields = 0, decoded.protobuf
    while fields and isinstance(fields[0].value, tuple):
        level, fields = level + 1, fields[0].value
    assert level == 7  # depth 8 counting the top; below that the bytes are left as bytes
    assert fields is not None and isinstance(fields[0].value, bytes)


def test_it_gives_up_protobuf_after_too_many_fields():
    decoded = decode_body(b"\x08\x01" * (MAX_FIELDS + 1), limit=1 << 20)
    assert decoded.format == "binary"
    assert "abandoned" in decoded.note


def test_it_never_tries_protobuf_beyond_the_limit():
    decoded = decode_body(b"\x08\x96\x01" * 100, limit=100)
    assert decoded.format == "binary"
    assert decoded.truncated


# -- text and binary -----------------------------------------------------------


def test_it_shows_text_as_is():
    text = "line one\n\tline two — ünïcödé\r\n\x1b[31mred\x1b[0m"
    decoded = decode_body(text.encode())
    assert (decoded.format, decoded.text, decoded.note) == ("text", text, "")


def test_it_shows_invalid_utf8_as_hex_with_a_note():
    body = b"A" * 17 + b"\xff" + b"tail"
    decoded = decode_body(body)
    assert decoded.format == "binary"
    assert decoded.note == "invalid UTF-8 at byte 17; shown as hex"
    assert decoded.text.splitlines()[0] == (
        "00000000  41 41 41 41 41 41 41 41  41 41 41 41 41 41 41 41  |AAAAAAAAAAAAAAAA|"
    )
    assert decoded.text.splitlines()[1] == (
        "00000010  41 ff 74 61 69 6c                                 |A.tail|"
    )


def test_it_shows_control_heavy_utf8_as_hex():
    decoded = decode_body(b"\x00\x00\x00\x01")
    assert decoded.format == "binary"
    assert "control characters" in decoded.note


def test_it_keeps_text_with_a_few_control_characters():
    decoded = decode_body(b"x" * 100 + b"\x00" + b"y" * 100)
    assert decoded.format == "text"
    assert decoded.note == "1 control characters"


def test_it_decodes_a_10_mb_body_quickly_and_bounded():
    for body in (b"0123456789abcdef" * 655_360, bytes(range(256)) * 40_960):
        assert len(body) == 10_485_760
        start = time.perf_counter()
        decoded = decode_body(body)
        elapsed = time.perf_counter() - start
        print(f"10 MB {decoded.format}: {elapsed * 1000:.1f} ms")
        assert decoded.size == len(body)
        assert decoded.truncated
        if decoded.format == "text":
            assert len(decoded.text) == 65536
        else:
            assert decoded.format == "binary"
            assert len(decoded.text.splitlines()) == 65536 // 16


def test_it_does_not_parse_json_over_a_megabyte():
    body = json.dumps([{"i": i} for i in range(200_000)]).encode()
    assert len(body) > 1 << 20
    decoded = decode_body(body, content_type="application/json")
    assert decoded.format == "text"
    assert decoded.value is None
    assert decoded.truncated and len(decoded.text) == 65536
    assert "not parsed" in decoded.note


def test_it_cuts_multibyte_text_at_limit_characters():
    decoded = decode_body(("日本語" * 1000).encode(), limit=10)
    assert (decoded.text, decoded.truncated) == ("日本語日本語日本語日", True)


def test_it_dumps_hex_like_hexdump_c():
    assert hexdump(b"", 100) == ""
    assert hexdump(b"Hello world\n\x00\x01\x02\x03Hello", 100) == (
        "00000000  48 65 6c 6c 6f 20 77 6f  72 6c 64 0a 00 01 02 03  |Hello world.....|\n"
        "00000010  48 65 6c 6c 6f                                    |Hello|"
    )
    assert hexdump(bytes(100), 20).count("\n") == 1
    assert hexdump(b"abc", 0) == ""


# -- headers -------------------------------------------------------------------


def test_it_shows_every_amqp_header_type():
    headers = {
        "str": "value",
        "bytes-text": b"plain",
        "bytes-bin": b"\x00\x01\xff",
        "int": -5,
        "bool": True,
        "float": 1.5,
        "decimal": Decimal("3.14"),
        "when": datetime(2024, 1, 2, 3, 4, 5),
        "void": None,
        "table": {"a": 1, "nested": {"b": [b"\x00", "x", None]}},
        "array": [1, "two", Decimal("3.0"), datetime(2024, 1, 1, tzinfo=UTC)],
        "bytearray": bytearray(b"\xfe\xed"),
    }
    rows = {row.key: row for row in decode_headers(headers)}
    assert [row.key for row in decode_headers(headers)] == list(headers)
    assert rows["str"] == HeaderValue("str", "string", "value")
    assert rows["bytes-text"] == HeaderValue("bytes-text", "bytes", "plain")
    assert rows["bytes-bin"] == HeaderValue("bytes-bin", "bytes", "0x0001ff")
    assert rows["int"].display == "-5"
    assert rows["bool"] == HeaderValue("bool", "bool", "true")
    assert rows["float"].display == "1.5"
    assert rows["decimal"] == HeaderValue("decimal", "decimal", "3.14")
    assert rows["when"] == HeaderValue("when", "timestamp", "2024-01-02T03:04:05+00:00")
    assert rows["void"] == HeaderValue("void", "null", "null")
    assert rows["table"] == HeaderValue(
        "table", "table", '{"a": 1, "nested": {"b": [0x00, "x", null]}}'
    )
    assert rows["array"] == HeaderValue(
        "array", "array", '[1, "two", 3.0, 2024-01-01T00:00:00+00:00]'
    )
    assert rows["bytearray"].display == "0xfeed"


def test_it_shows_kafka_headers_with_repeats_nones_and_spring_integers():
    headers = [
        ("trace", None),
        ("trace", b"abc"),
        ("kafka_dlt-original-topic", b"orders"),
        ("kafka_dlt-original-partition", (3).to_bytes(4, "big")),
        ("kafka_dlt-original-offset", (123_456_789).to_bytes(8, "big")),
        ("kafka_dlt-original-timestamp", (1_700_000_000_000).to_bytes(8, "big")),
        ("kafka_dlt-exception-stacktrace", b"java.lang.Oops\n\tat Foo.bar"),
        ("other-8-bytes", (5).to_bytes(8, "big")),
    ]
    rows = decode_headers(headers)
    assert [row.key for row in rows] == [key for key, _ in headers]
    assert rows[0] == HeaderValue("trace", "null", "null")
    assert rows[1].display == "abc"
    assert rows[2].display == "orders"
    assert rows[3].as_int == 3
    assert rows[3].display == "3  [0x00000003]"
    assert rows[4].as_int == 123_456_789
    assert rows[5].as_int == 1_700_000_000_000
    assert "2023-11-14T22:13:20+00:00" in rows[5].display
    assert rows[6].display == "java.lang.Oops\n\tat Foo.bar"
    assert rows[7].as_int is None and rows[7].display == "0x0000000000000005"


def test_it_never_raises_on_odd_headers():
    cyclic: dict[str, object] = {}
    cyclic["self"] = cyclic
    for headers in (None, 5, "text", b"bytes", [1, ("only-one",), None], {"k": object()}):
        assert isinstance(decode_headers(headers), tuple)  # type: ignore[arg-type]
    row = decode_headers({"loop": cyclic}, limit=100)[0]
    assert row.type_name == "table" and len(row.display) <= 101
    long = decode_headers({"big": "x" * 10_000, "huge": 10**5000}, limit=50)
    assert long[0].display == "x" * 50 + "…"
    assert len(long[1].display) == 51


# -- x-death -------------------------------------------------------------------


def test_it_orders_x_death_as_a_timeline():
    headers = {
        "x-death": [
            {
                "count": 2,
                "reason": "expired",
                "queue": "retry",
                "time": datetime(2024, 1, 2),
                "exchange": "dlx",
                "routing-keys": ["orders"],
                "original-expiration": "5000",
            },
            {
                "count": 1,
                "reason": "rejected",
                "queue": "orders",
                "time": 1_704_067_200,  # over HTTP: epoch seconds
                "exchange": "",
                "routing-keys": [b"orders", 7],
            },
        ],
        "x-first-death-queue": "orders",
    }
    assert decode_x_death(headers) == (
        DeathEvent(
            "orders", "rejected", 1, datetime(2024, 1, 1, tzinfo=UTC), "", ("orders",), None
        ),
        DeathEvent(
            "retry", "expired", 2, datetime(2024, 1, 2, tzinfo=UTC), "dlx", ("orders",), "5000"
        ),
    )


def test_it_survives_garbage_x_death():
    assert decode_x_death(None) == ()
    assert decode_x_death({"x-death": "nope"}) == ()
    assert decode_x_death({"x-death": [1, None, {}, "x"]}) == ()
    events = decode_x_death(
        {"x-death": [{"queue": 5, "count": "two", "time": "garbage", "routing-keys": "rk"}]}
    )
    assert events == (DeathEvent(None, None, None, None, None, ("rk",)),)
    timed = decode_x_death(
        {"x-death": [{"queue": "a"}, {"queue": "b", "time": 10**30}, {"queue": "c", "time": 0}]}
    )
    assert [event.queue for event in timed] == ["c", "b", "a"]


def test_it_falls_back_to_x_first_death_headers():
    events = decode_x_death(
        [
            ("x-first-death-queue", b"orders"),
            ("x-first-death-reason", "rejected"),
            ("x-first-death-exchange", ""),
            ("x-last-death-queue", "retry"),
            ("x-last-death-reason", "expired"),
            ("x-last-death-exchange", "dlx"),
        ]
    )
    assert events == (
        DeathEvent("orders", "rejected", None, None, ""),
        DeathEvent("retry", "expired", None, None, "dlx"),
    )
