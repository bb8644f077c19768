"""How a letter's body is edited and turned back into bytes (``deadletters.edit_body``)."""

from __future__ import annotations

import base64

import msgpack
import pytest

from dashboard.deadletters import edit_body as eb


def test_messagepack_is_edited_as_json_and_packed_back():
    body = msgpack.packb({"order": 7, "items": ["a"], "ok": True})
    form = eb.body_form(body, content_type="application/msgpack", decoded_format="msgpack")
    assert form.encoding == eb.MSGPACK
    assert eb.body_bytes(form.text, form.encoding) == body


def test_messagepack_with_bytes_is_edited_as_base64_not_as_lossy_json():
    body = msgpack.packb({"blob": b"\x00\xff"}, use_bin_type=True)
    form = eb.body_form(body, content_type="application/msgpack", decoded_format="msgpack")
    assert form.encoding == eb.BASE64
    assert eb.body_bytes(form.text, form.encoding) == body


@pytest.mark.parametrize("encoding", [eb.BASE64, eb.HEX])
def test_binary_round_trips_byte_for_byte(encoding):
    raw = bytes(range(256))
    text = base64.b64encode(raw).decode() if encoding == eb.BASE64 else raw.hex(" ")
    assert eb.body_bytes(text, encoding) == raw


def test_text_stays_text_with_its_own_line_breaks():
    form = eb.body_form("héllo\nwörld".encode(), content_type="text/plain", decoded_format="text")
    assert form.encoding == eb.TEXT
    assert eb.body_bytes("héllo\r\nwörld", eb.TEXT) == "héllo\nwörld".encode()


@pytest.mark.parametrize(
    ("text", "encoding", "says"),
    [("{nope", eb.MSGPACK, "not valid JSON"), ("@@", eb.BASE64, "base64"), ("zz", eb.HEX, "hex")],
)
def test_a_wrong_body_names_the_body_field(text, encoding, says):
    with pytest.raises(eb.EditError) as caught:
        eb.body_bytes(text, encoding)
    assert caught.value.field == "body" and says in caught.value.message


def test_wrong_headers_name_the_headers_field():
    with pytest.raises(eb.EditError) as caught:
        eb.parse_headers("{not json")
    assert caught.value.field == "headers"
