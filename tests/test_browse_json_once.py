"""The browse JSON sends each key, value and header value once: text when UTF-8, else base64."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import override_settings

from dashboard.core.encoding import encode_once
from tests.support import kafka as support
from tests.support.kafka import SLUG

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]

kafka_only = support.kafka_only
kit = support.kit


def records(client: Any, topic: str) -> list[dict[str, Any]]:
    url = f"/api/clusters/{SLUG}/kafka/topics/{topic}/messages"
    response = client.get(url, {"start": "oldest", "limit": 100})
    assert response.status_code == 200, response.content
    return response.json()["records"]  # type: ignore[no-any-return]


def test_it_sends_text_once_and_binary_as_base64(client, viewer, kafka_only, kit):
    name = kit.topic()
    kit.produce(
        name,
        {"key": "clé".encode(), "value": b'{"order": 1}', "headers": [("h", "ü".encode())]},
        {"key": b"\x81\x00", "value": b"\xde\xad\xbe\xef", "headers": [("bin", b"\xff")]},
    )
    client.force_login(viewer)
    text, binary = records(client, name)
    assert text["key"] | {"download": ""} == {
        "format": "text",
        "size": 4,
        "encoding": "utf-8",
        "data": "clé",
        "truncated": False,
        "decoded": None,
        "note": "",
        "download": "",
    }
    assert (text["value"]["format"], text["value"]["data"]) == ("json", '{"order": 1}')
    assert text["headers"] == [
        {"key": "h", "encoding": "utf-8", "value": "ü", "decoded": None, "type": "bytes"}
    ]
    value = binary["value"]
    assert value["encoding"] == "base64" and value["format"] == "binary"
    assert base64.b64decode(value["data"]) == b"\xde\xad\xbe\xef"
    assert value["decoded"].startswith("00000000  de ad be ef")
    (header,) = binary["headers"]
    assert (header["encoding"], base64.b64decode(header["value"])) == ("base64", b"\xff")


def test_a_page_of_text_values_carries_each_value_once(client, viewer, kafka_only, kit):
    name = kit.topic()
    payload = json.dumps({"text": "x" * 1000}).encode()
    kit.produce(name, *({"key": b"k%d" % i, "value": payload} for i in range(100)))
    client.force_login(viewer)
    url = f"/api/clusters/{SLUG}/kafka/topics/{name}/messages"
    body = client.get(url, {"start": "oldest", "limit": 100}).content
    assert body.count(b"x" * 1000) == 100  # once per record, and no base64 copy beside it
    assert len(body) < 100 * (len(payload) + 600)
    assert all(r["value"]["data"] == payload.decode() for r in json.loads(body)["records"])


@override_settings(MQB_DISPLAY_LIMIT=10)
def test_a_cut_value_stays_text_when_the_cut_splits_a_character(client, viewer, kafka_only, kit):
    name = kit.topic()
    kit.produce(name, {"value": "abcdefghi€ and more".encode()})
    client.force_login(viewer)
    (record,) = records(client, name)
    value = record["value"]
    assert (value["encoding"], value["data"], value["truncated"]) == ("utf-8", "abcdefghi", True)
    assert value["size"] == len("abcdefghi€ and more".encode())


def test_the_openapi_document_describes_the_one_encoding(client, viewer):
    client.force_login(viewer)
    schemas = client.get("/api/openapi.json").json()["components"]["schemas"]
    part = schemas["KafkaBytesOut"]["properties"]
    assert {"encoding", "data", "decoded"} <= part.keys() and "base64" not in part
    assert part["encoding"]["enum"] == ["utf-8", "base64"]
    header = schemas["KafkaHeaderOut"]["properties"]
    assert "base64" not in header and "display" not in header
    peeked = schemas["PeekedMessageOut"]["properties"]
    assert "body" in peeked and "body_base64" not in peeked


def test_encode_once_keeps_a_truly_binary_tail_binary():
    assert encode_once(b"abc\xe2\x82", cut=True) == ("utf-8", "abc")
    assert encode_once(b"abc\xe2\x82") == ("base64", base64.b64encode(b"abc\xe2\x82").decode())
    assert encode_once(b"ab\xffcd", cut=True)[0] == "base64"
