"""Hostile parameters are 400s, never 500s; every /api/ answer is JSON in the documented shape.

Against the real app, the real Kafka (topics from ``unique_name``) and the
real database. The error shape is ``{"error": str, "code": str}``
(``dashboard.core.api.ErrorOut``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import pytest
from django.test import Client

from tests.support import kafka as support
from tests.support.kafka import SLUG

pytestmark = [pytest.mark.django_db]

kafka_only = support.kafka_only
kit = support.kit

K = f"/api/clusters/{SLUG}/kafka"
PAGES = f"/clusters/{SLUG}/kafka"
HUGE = "9" * 5000
BIG_TIMESTAMP = "99999999999999999999"
PARTITION_TOO_BIG = 2**31
OFFSET_TOO_BIG = 2**63


def assert_json_error(response: Any, status: int, code: str | None = None) -> Any:
    assert response.status_code == status, (response.status_code, response.content[:500])
    assert response["Content-Type"] == "application/json", response.content[:500]
    data = response.json()
    # ErrorOut: a refused input also names its field.
    assert {"error", "code"} <= set(data) <= {"error", "code", "field"}, data
    assert isinstance(data["error"], str) and data["error"]
    assert isinstance(data["code"], str) and data["code"]
    if code is not None:
        assert data["code"] == code, data
    return data


@pytest.fixture
def topic(kafka_only, kit, unique_name) -> Any:
    name = kit.topic(unique_name)
    kit.fill(name, 3)
    return name


@pytest.fixture
def viewing(client, viewer) -> Any:
    client.force_login(viewer)
    return client


# -- Kafka: partitions, offsets, timestamps, page numbers ---------------------


@pytest.mark.kafka
@pytest.mark.parametrize(
    "params",
    [
        {"partition": str(PARTITION_TOO_BIG)},
        {"partition": "-1"},
        {"partition": HUGE},
        {"start": "offset", "offset": str(OFFSET_TOO_BIG)},
        {"start": "offset", "offset": HUGE},
        {"start": "timestamp", "timestamp": BIG_TIMESTAMP},
        {"start": "timestamp", "timestamp": "10000-01-01T00:00:00"},
        {"cursor": f"{PARTITION_TOO_BIG}:0"},
        {"cursor": f"0:{OFFSET_TOO_BIG}"},
        {"cursor": f"0:{HUGE}"},
        {"limit": HUGE},
    ],
    ids=lambda p: ",".join(f"{k}={v[:24]}" for k, v in p.items()),
)
def test_it_refuses_hostile_browse_parameters(viewing, topic, params):
    assert_json_error(viewing.get(f"{K}/topics/{topic}/messages", params), 400, "invalid")
    page = viewing.get(f"{PAGES}/topics/{topic}/messages/", params)
    assert page.status_code == 400
    assert b"must" in page.content


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("partition", "offset"),
    [(PARTITION_TOO_BIG, 0), (0, OFFSET_TOO_BIG), (-1, 0), (0, -1), (0, HUGE), (HUGE, 0)],
    ids=lambda v: str(v)[:24],
)
def test_it_refuses_hostile_record_paths(viewing, topic, partition, offset):
    assert_json_error(viewing.get(f"{K}/topics/{topic}/messages/{partition}/{offset}"), 400)
    download = viewing.get(f"{PAGES}/topics/{topic}/records/{partition}/{offset}/value")
    assert download.status_code == 400, download.content[:300]


@pytest.mark.kafka
def test_a_real_record_is_still_read_and_downloaded(viewing, topic):
    record = viewing.get(f"{K}/topics/{topic}/messages/0/2")
    assert record.status_code == 200 and record.json()["offset"] == 2
    download = viewing.get(f"{PAGES}/topics/{topic}/records/0/2/value")
    assert download.status_code == 200 and download.content == b"m-2"


@pytest.mark.kafka
@pytest.mark.parametrize("page", [HUGE, "²", "-3", "0", "1e3"])
def test_it_refuses_hostile_page_numbers(viewing, kafka_only, page):
    for path in ("topics", "groups"):
        assert_json_error(viewing.get(f"{K}/{path}", {"page": page}), 400, "invalid")
        assert viewing.get(f"{PAGES}/{path}/", {"page": page}).status_code == 400


@pytest.mark.kafka
def test_a_huge_page_number_is_an_empty_last_page_not_an_error(viewing, kafka_only):
    assert viewing.get(f"{K}/topics", {"page": "1000000"}).status_code == 200


@pytest.mark.kafka
@pytest.mark.parametrize(
    "body",
    [
        {"to": "timestamp", "timestamp": BIG_TIMESTAMP},
        {"to": "timestamp", "timestamp": "2024-13-45T00:00:00"},
        {"to": "offset", "offset": OFFSET_TOO_BIG},
        {"to": "offset", "offset": 1, "partition": PARTITION_TOO_BIG},
        {"to": "earliest", "topic": "%00"},
        {"to": "earliest", "topic": "a/b"},
    ],
    ids=lambda b: ",".join(f"{k}={str(v)[:24]}" for k, v in b.items()),
)
def test_it_refuses_hostile_offset_resets(client, admin_user_, kit, topic, unique_name, body):
    group = kit.commit(f"{unique_name}-group", {(topic, 0): 1})
    client.force_login(admin_user_)
    payload = {"topic": topic, **body}
    url = f"{K}/reset-offsets/{group}"
    assert_json_error(client.post(url, payload, content_type="application/json"), 400, "invalid")
    form = {k: str(v) for k, v in payload.items()}
    page = client.post(f"{PAGES}/reset-offsets/{group}", {**form, "action": "preview"})
    assert page.status_code == 400, page.content[:300]


@pytest.mark.kafka
def test_it_refuses_a_partition_past_int32_on_writes(client, admin_user_, topic):
    client.force_login(admin_user_)
    produce = client.post(
        f"{K}/topics/{topic}/messages",
        {"value": "x", "partition": PARTITION_TOO_BIG},
        content_type="application/json",
    )
    assert_json_error(produce, 400, "invalid")
    purge = client.post(
        f"{K}/topics/{topic}/purge",
        {"partition": PARTITION_TOO_BIG, "confirm": topic},
        content_type="application/json",
    )
    assert_json_error(purge, 400, "invalid")
    form = client.post(
        f"{PAGES}/topics/{topic}/produce/", {"value": "x", "partition": str(PARTITION_TOO_BIG)}
    )
    assert form.status_code == 400


# -- Kafka: topic names librdkafka cannot take ---------------------------------

BAD_TOPICS = ["\x00", "a b", "é", "x" * 250, ".", "..", "a\ud800", "a:b", "a%2Fb"]


@pytest.mark.kafka
@pytest.mark.parametrize("name", BAD_TOPICS, ids=lambda n: repr(n)[:20])
def test_it_refuses_topic_names_kafka_cannot_have(client, operator, kafka_only, name):
    client.force_login(operator)
    segment = quote(name.encode("utf-8", "surrogatepass"), safe="")
    base = f"{K}/topics/{segment}"
    for url in (base, f"{base}/groups", f"{base}/messages", f"{base}/messages/0/0"):
        assert_json_error(client.get(url), 400, "invalid")
    produce = client.post(f"{base}/messages", {"value": "x"}, content_type="application/json")
    assert_json_error(produce, 400, "invalid")
    purge = client.post(f"{base}/purge", {}, content_type="application/json")
    assert_json_error(purge, 400, "invalid")
    for page in ("", "messages/", "records/0/0/value", "produce/"):
        response = client.get(f"{PAGES}/topics/{segment}/{page}")
        assert response.status_code == 400, (page, response.status_code)


@pytest.mark.kafka
def test_a_legal_but_missing_topic_is_still_404(viewing, kafka_only, unique_name):
    assert_json_error(viewing.get(f"{K}/topics/{unique_name}.absent_-x"), 404)


# -- Dead letters, jobs, metrics -------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {"since": "2024-13-45T00:00:00"},
        {"until": "2024-02-30T25:00:00"},
        {"since": "99999-01-01T00:00:00"},
        {"page": HUGE},
        {"page": "²"},
        {"page": "0"},
    ],
    ids=lambda p: ",".join(f"{k}={v[:24]}" for k, v in p.items()),
)
def test_it_refuses_hostile_inbox_filters(viewing, params):
    for path in ("letters", "groups"):
        assert_json_error(viewing.get(f"/api/deadletters/{path}", params), 400, "invalid")
    page = viewing.get("/deadletters/", params)
    assert page.status_code == 400
    html = page.content.decode()
    assert "since" in html or "until" in html or "page" in html


def test_a_good_inbox_filter_still_works(viewing):
    assert viewing.get("/api/deadletters/letters", {"since": "2024-01-31T00:00:00"}).json() == {
        "page": 1,
        "pages": 1,
        "count": 0,
        "items": [],
    }
    assert viewing.get("/deadletters/", {"since": "2024-01-31T00:00:00Z"}).status_code == 200


@pytest.mark.parametrize("number", [str(2**63), str(10**30), HUGE])
def test_it_answers_huge_ids_in_paths_with_json_not_500(viewing, number):
    for url in (f"/api/deadletters/letters/{number}", f"/api/jobs/{number}"):
        response = viewing.get(url)
        assert_json_error(response, response.status_code)
        assert response.status_code in (400, 404)


def test_it_answers_huge_or_odd_ids_in_bodies_without_a_500(client, operator):
    client.force_login(operator)
    body = {"ids": [2**70, -(2**70)]}
    response = client.post("/api/deadletters/discard", body, content_type="application/json")
    assert response.status_code < 500 and response["Content-Type"] == "application/json"
    form = client.post("/deadletters/discard", {"ids": ["²", "9" * 30]})
    assert form.status_code == 302


@pytest.mark.rabbitmq
def test_it_refuses_a_move_count_past_64_bits(client, operator, use_clusters, rabbitmq_vhost):
    client.force_login(operator)
    body = {"vhost": rabbitmq_vhost, "queue": "a", "target_queue": "b", "count": 2**63}
    move = client.post(
        "/api/clusters/test-rabbitmq/rabbitmq/move", body, content_type="application/json"
    )
    assert_json_error(move, 400, "invalid")


def test_it_refuses_a_huge_consumers_limit(viewing):
    assert_json_error(viewing.get("/api/consumers", {"limit": HUGE}), 400, "invalid")


# -- Every /api/ answer is JSON ----------------------------------------------------


def test_an_unknown_api_route_is_json_404(viewing):
    assert_json_error(viewing.get("/api/no/such/thing"), 404, "not_found")
    assert_json_error(viewing.get("/api/"), 404, "not_found")
    # Pages keep their HTML 404.
    page = viewing.get("/no/such/page/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


def test_with_debug_on_api_errors_are_still_json(viewing, settings):
    settings.DEBUG = True  # Django's technical 404 page is HTML
    assert_json_error(viewing.get("/api/no/such/thing"), 404, "not_found")


def test_a_wrong_method_is_json_405_with_allow(viewing, kafka_only):
    for url, method, allowed in [
        (f"{K}/topics/x/purge", "get", {"POST"}),
        (f"{K}/topics", "post", {"GET"}),
        (f"{K}/topics/x/messages", "delete", {"GET", "POST"}),
        ("/api/jobs", "post", {"GET"}),
        ("/api/jobs/1/cancel", "get", {"POST"}),
        ("/api/deadletters/discard", "get", {"POST"}),
        ("/api/deadletters/queues", "put", {"GET"}),
    ]:
        response = getattr(viewing, method)(url)
        assert_json_error(response, 405, "method_not_allowed")
        assert {m.strip() for m in response["Allow"].split(",")} == allowed, url


def test_a_csrf_failure_is_json_403(viewer):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(viewer)
    response = strict.post(
        "/api/deadletters/discard", {"ids": [1]}, content_type="application/json"
    )
    data = assert_json_error(response, 403, "csrf_failed")
    assert "CSRF" in data["error"]
    # A page keeps Django's HTML answer.
    page = strict.post("/deadletters/discard", {"ids": ["1"]})
    assert page.status_code == 403 and page["Content-Type"].startswith("text/html")


def test_a_body_too_big_is_json_413(client, operator, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    client.force_login(operator)
    body = '{"ids": [' + ",".join(["1"] * 2000) + "]}"
    response = client.post("/api/deadletters/discard", body, content_type="application/json")
    assert_json_error(response, 413, "too_large")


def test_an_unexpected_error_is_json_500(client, viewer, monkeypatch):
    from dashboard.metrics import api as metrics

    def explode(**kwargs: Any) -> Any:
        raise RuntimeError("a bug with a secret detail")

    monkeypatch.setattr(metrics, "get_consumers_page", explode)
    client.raise_request_exception = False
    client.force_login(viewer)
    data = assert_json_error(client.get("/api/consumers"), 500, "internal_error")
    assert "secret" not in data["error"]


@pytest.mark.kafka
@pytest.mark.parametrize("group", ["%00", "a%00b"])
def test_it_refuses_group_ids_librdkafka_cannot_take(client, admin_user_, kafka_only, group):
    client.force_login(admin_user_)
    assert_json_error(client.get(f"{K}/groups/{group}"), 400, "invalid")
    reset = {"topic": "x", "to": "earliest"}
    url = f"{K}/reset-offsets/{group}"
    assert_json_error(client.post(url, reset, content_type="application/json"), 400, "invalid")
    assert client.get(f"{PAGES}/groups/{group}").status_code == 400
