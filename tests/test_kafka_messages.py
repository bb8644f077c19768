"""The Kafka message browser: starts, paging, decoding, bounded search, downloads."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import pytest
from confluent_kafka import TopicPartition
from django.test import override_settings

from tests.support import kafka as support
from tests.support.kafka import SLUG

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]

# Shared fixtures (see tests/support/kafka.py).
kafka_only = support.kafka_only
kit = support.kit


def api(client: Any, topic: str, **params: Any) -> Any:
    response = client.get(f"/api/clusters/{SLUG}/kafka/topics/{topic}/messages", params)
    assert response.status_code == 200, response.content
    return response.json()


def offsets(data: Any) -> list[tuple[int, int]]:
    return [(r["partition"], r["offset"]) for r in data["records"]]


def test_it_shows_the_newest_records_by_default(client, viewer, kafka_only, kit):
    name = kit.topic()
    kit.fill(name, 30)
    client.force_login(viewer)
    data = api(client, name, limit=5)
    assert offsets(data) == [(0, o) for o in range(25, 30)]
    assert data["ranges"][0] == {
        "partition": 0, "low": 0, "high": 30, "start": 25, "first": 25, "last": 29,
        "next": 30, "count": 5, "at_end": True,
    }  # fmt: skip
    page = client.get(f"/clusters/{SLUG}/kafka/topics/{name}/messages/", {"limit": 5})
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('class="record"') == 5 and "m-29" in html


def test_it_reads_from_the_oldest_an_offset_or_a_time(client, viewer, kafka_only, kit):
    name = kit.topic()
    base = int(time.time() * 1000) - 100_000
    kit.produce(
        name, *({"value": f"v{i}".encode(), "timestamp": base + i * 1000} for i in range(20))
    )
    client.force_login(viewer)
    assert offsets(api(client, name, start="oldest", limit=3)) == [(0, 0), (0, 1), (0, 2)]
    assert offsets(api(client, name, start="offset", offset=7, limit=2)) == [(0, 7), (0, 8)]
    by_time = api(client, name, start="timestamp", timestamp=base + 12_500, limit=2)
    assert offsets(by_time) == [(0, 13), (0, 14)]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((base + 15_000) / 1000))
    assert offsets(api(client, name, start="timestamp", timestamp=iso + "+00:00", limit=1)) == [
        (0, 15)
    ]
    late = api(client, name, start="timestamp", timestamp=base + 10_000_000, limit=5)
    assert late["records"] == [] and late["ranges"][0]["at_end"]


def test_a_start_outside_the_partition_is_clamped_to_its_records(client, viewer, kafka_only, kit):
    """A named partition is assigned at the asked offset before its watermarks come back;
    a start they put out of range (past the end, below the log start) reads as clamped."""
    name = kit.topic(partitions=2)
    kit.fill(name, 10, partition=0)
    kit.fill(name, 10, partition=1)
    futures = kit.admin.delete_records([TopicPartition(name, 0, 4)], request_timeout=10)
    for future in futures.values():
        future.result()
    client.force_login(viewer)
    past = api(client, name, partition=0, start="offset", offset=50, limit=3)
    assert past["records"] == [] and past["ranges"][0]["start"] == 10
    assert past["ranges"][0]["at_end"]
    at_end = api(client, name, partition=0, start="offset", offset=10, limit=3)
    assert at_end["records"] == [] and at_end["ranges"][0]["at_end"]
    below = api(client, name, partition=0, start="offset", offset=1, limit=3)
    assert offsets(below) == [(0, 4), (0, 5), (0, 6)] and below["ranges"][0]["low"] == 4
    assert offsets(api(client, name, partition=0, start="oldest", limit=2)) == [(0, 4), (0, 5)]
    both = api(client, name, partition=[0, 1], cursor="0:2,1:30", limit=4)
    assert offsets(both) == [(0, 4), (0, 5)]
    assert [(r["partition"], r["start"], r["at_end"]) for r in both["ranges"]] == [
        (0, 4, False),
        (1, 10, True),
    ]
    again = api(client, name, partition=1, start="offset", offset=8, limit=5)
    assert offsets(again) == [(1, 8), (1, 9)] and again["ranges"][0]["at_end"]


def test_it_pages_forward_and_back_with_cursors(client, viewer, kafka_only, kit):
    name = kit.topic(partitions=2)
    kit.fill(name, 10, partition=0)
    kit.fill(name, 10, partition=1)
    client.force_login(viewer)
    first = api(client, name, start="oldest", limit=4)
    assert sorted(offsets(first)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    second = api(client, name, cursor=first["next_cursor"], limit=4)
    assert sorted(offsets(second)) == [(0, 2), (0, 3), (1, 2), (1, 3)]
    back = api(client, name, cursor=second["prev_cursor"], limit=4)
    assert sorted(offsets(back)) == sorted(offsets(first))
    assert back["prev_cursor"] is None
    only_one = api(client, name, partition=1, start="oldest", limit=3)
    assert offsets(only_one) == [(1, 0), (1, 1), (1, 2)]
    html = client.get(
        f"/clusters/{SLUG}/kafka/topics/{name}/messages/", {"start": "oldest", "limit": 4}
    ).content.decode()
    assert "cursor=0%3A2%2C1%3A2" in html  # the "Newer" link carries the next cursor


def test_it_shows_null_binary_keys_and_repeated_null_headers(client, viewer, kafka_only, kit):
    name = kit.topic()
    kit.produce(
        name,
        {"key": None, "value": None},
        {
            "key": b"\x00\xff\x10binary",
            "value": json.dumps({"a": 1}).encode(),
            "headers": [("trace", b"one"), ("trace", b"two"), ("empty", None)],
        },
    )
    client.force_login(viewer)
    data = api(client, name, start="oldest")
    null, binary = data["records"]
    assert null["key"] is None and null["value"] is None
    assert binary["key"]["format"] == "binary"
    assert binary["key"]["encoding"] == "base64"
    assert base64.b64decode(binary["key"]["data"]) == b"\x00\xff\x10binary"
    assert binary["value"]["format"] == "json" and binary["value"]["data"] == '{"a": 1}'
    assert [(h["key"], h["type"], h["value"]) for h in binary["headers"]] == [
        ("trace", "bytes", "one"),
        ("trace", "bytes", "two"),
        ("empty", "null", None),
    ]
    html = client.get(
        f"/clusters/{SLUG}/kafka/topics/{name}/messages/", {"start": "oldest"}
    ).content.decode()
    first_row, second_row = html.split('class="record"')[1:3]
    assert first_row.count('<span class="null muted">null</span>') >= 2
    assert second_row.count("<code>trace</code>") == 2 and "00000000  00 ff 10" in second_row


@override_settings(MQB_DISPLAY_LIMIT=4096)
def test_a_record_at_the_size_limit_is_truncated_with_a_download(client, viewer, kafka_only, kit):
    name = kit.topic()
    big = b"x" * 1_000_000
    kit.produce(name, {"key": b"big", "value": big})
    client.force_login(viewer)
    started = time.monotonic()
    html = client.get(f"/clusters/{SLUG}/kafka/topics/{name}/messages/").content.decode()
    assert time.monotonic() - started < 10
    assert "truncated" in html and "download all 1,000,000 bytes" in html
    assert len(html) < 200_000  # the page carries the display limit, not the megabyte
    data = api(client, name)
    value = data["records"][0]["value"]
    assert value["truncated"] and value["size"] == 1_000_000 and value["data"] == "x" * 4096
    download = client.get(value["download"])
    assert download.status_code == 200
    assert download["Content-Type"] == "application/octet-stream"
    assert b"".join(download.streaming_content if download.streaming else [download.content]) == big


def test_a_download_of_a_null_value_or_a_missing_offset_is_404(client, viewer, kafka_only, kit):
    name = kit.topic()
    kit.produce(name, {"key": b"k", "value": None})
    client.force_login(viewer)
    base = f"/clusters/{SLUG}/kafka/topics/{name}/records/0"
    assert client.get(f"{base}/0/key").content == b"k"
    assert client.get(f"{base}/0/value").status_code == 404
    assert client.get(f"{base}/5/value").status_code == 404
    assert client.get(f"{base}/0/neither").status_code == 400
    record = client.get(f"/api/clusters/{SLUG}/kafka/topics/{name}/messages/0/0").json()
    assert record["value"] is None and record["key"]["data"] == "k"


def test_it_searches_keys_and_values_within_a_bounded_scan(client, viewer, kafka_only, kit):
    name = kit.topic(partitions=2)
    kit.fill(name, 50, partition=0, prefix="alpha")
    kit.produce(name, {"key": b"needle-key", "value": b"x", "partition": 1})
    kit.fill(name, 5, partition=1, prefix="beta")
    client.force_login(viewer)
    hits = api(client, name, q="needle", start="oldest")
    assert offsets(hits) == [(1, 0)]
    assert hits["stopped"] is None and not hits["bound_hit"]
    assert [(r["partition"], r["first"], r["last"], r["at_end"]) for r in hits["ranges"]] == [
        (0, 0, 49, True),
        (1, 0, 5, True),
    ]
    assert api(client, name, q="needle", **{"in": "value"}, start="oldest")["records"] == []
    assert len(api(client, name, q="alpha-4", start="oldest")["records"]) == 11  # 4, 40..49
    html = client.get(
        f"/clusters/{SLUG}/kafka/topics/{name}/messages/", {"q": "needle", "start": "oldest"}
    ).content.decode()
    assert "Searched 56 records" in html and "no bound was hit" in html


@override_settings(MQB_KAFKA_SEARCH_MAX_RECORDS=20)
def test_a_search_says_which_bound_stopped_it(client, viewer, kafka_only, kit):
    name = kit.topic()
    kit.fill(name, 100)
    client.force_login(viewer)
    data = api(client, name, q="nothing-matches", start="oldest")
    assert data["stopped"] == "records" and data["bound_hit"]
    assert data["scanned"] == 20
    (scanned,) = data["ranges"]
    assert (scanned["first"], scanned["last"], scanned["next"], scanned["at_end"]) == (
        0,
        19,
        20,
        False,
    )
    follow = api(client, name, q="nothing-matches", cursor=data["next_cursor"])
    assert follow["ranges"][0]["first"] == 20
    html = client.get(
        f"/clusters/{SLUG}/kafka/topics/{name}/messages/", {"q": "zzz", "start": "oldest"}
    ).content.decode()
    assert "Stopped at the scan bound (20 records)" in html


def test_reads_never_commit_and_never_create_topics(client, viewer, kafka_only, kit):
    name = kit.topic()
    kit.fill(name, 3)
    client.force_login(viewer)
    api(client, name, start="oldest")
    api(client, name, q="m-1")
    missing = kit.name("-missing")
    assert client.get(f"/api/clusters/{SLUG}/kafka/topics/{missing}/messages").status_code == 404
    assert missing not in kit.admin.list_topics(timeout=5).topics
    groups = kit.admin.list_consumer_groups(request_timeout=10).result().valid
    assert not [g.group_id for g in groups if g.group_id.startswith("mqboard-browse-")]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "sideways"}, "start must be one of"),
        ({"start": "offset"}, "needs an offset"),
        ({"start": "offset", "offset": "-3"}, "at least 0"),
        ({"start": "timestamp", "timestamp": "yesterday"}, "ISO 8601"),
        ({"limit": "100000"}, "at most"),
        ({"cursor": "x:y"}, "cursor must look like"),
        ({"partition": "7"}, "no partition 7"),
    ],
)
def test_it_answers_bad_browse_parameters_clearly(client, viewer, kafka_only, kit, params, message):
    name = kit.topic()
    client.force_login(viewer)
    response = client.get(f"/api/clusters/{SLUG}/kafka/topics/{name}/messages", params)
    assert response.status_code in (400, 404)
    assert message in response.json()["error"]
    page = client.get(f"/clusters/{SLUG}/kafka/topics/{name}/messages/", params)
    assert page.status_code in (400, 404) and message in page.content.decode()


def test_it_escapes_hostile_keys_values_and_headers(client, viewer, kafka_only, kit):
    name = kit.topic()
    evil = "<script>alert(1)</script>"
    kit.produce(
        name, {"key": evil.encode(), "value": evil.encode(), "headers": [(evil, evil.encode())]}
    )
    client.force_login(viewer)
    html = client.get(f"/clusters/{SLUG}/kafka/topics/{name}/messages/").content.decode()
    assert evil not in html
    assert html.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 4  # key, value x2, header
