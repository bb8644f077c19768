"""What the API fuzzing (tests/test_api_fuzz.py) found: inputs outside the document are refused.

Each of these was answered 200 (clamped, ignored or coerced) or 500 although the
OpenAPI document says it is invalid; now it is a 400 naming the field, and a
method an operation does not have is a 405.
"""

from __future__ import annotations

from typing import Any

import pytest

from dashboard.core.connections import close_all

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]

SLUG = "test-rabbitmq"
API = f"/api/clusters/{SLUG}/rabbitmq"


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config):
    use_clusters(rabbitmq_config)
    yield rabbitmq_config
    await close_all()


def assert_invalid(response: Any, field: str) -> None:
    assert response.status_code == 400, (response.status_code, response.content[:300])
    body = response.json()
    assert body["code"] == "invalid"
    assert field in body["error"]


@pytest.mark.parametrize("path", ["queues", "exchanges"])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"page_size": "501"}, "page_size"),
        ({"page_size": "0"}, "page_size"),
        ({"page": "0"}, "page"),
    ],
)
def test_it_refuses_page_numbers_and_sizes_outside_the_documented_bounds(
    client, viewer, rabbit, path, params, field
):
    client.force_login(viewer)
    assert_invalid(client.get(f"{API}/{path}", params), field)


def test_it_still_serves_the_largest_documented_page_size(client, viewer, rabbit, rabbitmq_vhost):
    client.force_login(viewer)
    answer = client.get(f"{API}/queues", {"vhost": rabbitmq_vhost, "page_size": "500"})
    assert answer.status_code == 200
    assert answer.json()["query"]["page_size"] == 500


@pytest.mark.parametrize(
    ("params", "field"), [({"state": "AAA"}, "state"), ({"kind": "x"}, "kind")]
)
def test_it_refuses_consumer_filters_outside_their_enums(client, viewer, params, field):
    client.force_login(viewer)
    assert_invalid(client.get("/api/consumers", params), field)


def test_an_empty_consumer_kind_still_means_every_kind(client, viewer):
    client.force_login(viewer)
    assert client.get("/api/consumers", {"kind": "", "state": "all"}).status_code == 200


def test_an_empty_number_in_a_query_is_its_default(client, viewer):
    # As the document says of every integer query parameter (a blank form field).
    client.force_login(viewer)
    answer = client.get("/api/consumers", {"limit": ""})
    assert answer.status_code == 200
    assert answer.json()["limit"] == 500


@pytest.mark.parametrize("body", [{"confirm_name": {}}, {"confirm_name": 7}])
def test_it_refuses_a_purge_confirmation_that_is_not_a_string(
    client, operator, rabbit, rabbitmq_vhost, body
):
    client.force_login(operator)
    answer = client.post(
        f"{API}/queue/purge?vhost={rabbitmq_vhost}&name=anything",
        body,
        content_type="application/json",
    )
    assert_invalid(answer, "confirm_name")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"properties": False}, "properties"),
        ({"exchange": 123}, "exchange"),
        ({"routing_key": ["q"]}, "routing_key"),
        ({"body": {}}, "body"),
    ],
)
def test_it_refuses_publish_fields_of_the_wrong_type(
    client, operator, rabbit, rabbitmq_vhost, change, field
):
    client.force_login(operator)
    body = {"vhost": rabbitmq_vhost, "routing_key": "nowhere", "body": "x", **change}
    answer = client.post(f"{API}/publish", body, content_type="application/json")
    assert_invalid(answer, field)


@pytest.mark.parametrize("routing_key", [0, False, [], {}])
def test_it_refuses_a_move_routing_key_that_is_not_a_string(
    client, operator, rabbit, rabbitmq_vhost, routing_key
):
    client.force_login(operator)
    body = {
        "vhost": rabbitmq_vhost,
        "queue": "source",
        "target_exchange": "amq.direct",
        "routing_key": routing_key,
    }
    answer = client.post(f"{API}/move", body, content_type="application/json")
    assert_invalid(answer, "routing key")


@pytest.mark.parametrize(
    "ids", [[True], [False, 1], [0], [2**63], [100150575873204908165976555520]]
)
@pytest.mark.parametrize("path", ["/api/deadletters/discard", "/api/deadletters/requeue-bulk"])
def test_it_refuses_letter_ids_no_letter_can_have(client, operator, path, ids):
    client.force_login(operator)
    answer = client.post(path, {"ids": ids}, content_type="application/json")
    assert_invalid(answer, "ids")


@pytest.mark.parametrize(
    "path",
    [
        "/api/clusters/health",
        "/api/openapi.json",
        "/api/consumers",
        f"/api/metrics/{SLUG}/history",
    ],
)
@pytest.mark.parametrize("method", ["post", "put", "delete", "trace"])
def test_a_read_only_operation_answers_other_methods_with_405(client, viewer, path, method):
    client.force_login(viewer)
    answer = getattr(client, method)(path)
    assert answer.status_code == 405
    assert "GET" in answer["Allow"]


@pytest.mark.kafka
@pytest.mark.parametrize("headers", [{}, {"h": "v"}, "h:v", 0])
def test_it_refuses_kafka_produce_headers_that_are_not_a_list(
    client, operator, use_clusters, kafka_config, headers
):
    use_clusters(kafka_config)
    client.force_login(operator)
    answer = client.post(
        "/api/clusters/test-kafka/kafka/topics/any-topic/messages",
        {"value": "x", "headers": headers},
        content_type="application/json",
    )
    assert_invalid(answer, "headers")


@pytest.mark.kafka
@pytest.mark.parametrize("field", ["key_format", "value_format"])
@pytest.mark.parametrize("value", [{}, 0, False, []])
def test_it_refuses_kafka_produce_formats_that_are_not_strings(
    client, operator, use_clusters, kafka_config, field, value
):
    use_clusters(kafka_config)
    client.force_login(operator)
    answer = client.post(
        "/api/clusters/test-kafka/kafka/topics/any-topic/messages",
        {"key": "k", "value": "x", field: value},
        content_type="application/json",
    )
    assert_invalid(answer, field)


@pytest.mark.kafka
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"value": None, "key_format": "rot13"}, "key_format"),
        ({"value": None, "key_format": "json"}, "key_format"),
        ({"key": None, "value": None, "value_format": "hex"}, "value_format"),
    ],
)
def test_it_refuses_a_kafka_produce_format_even_for_a_null_key_or_value(
    client, operator, use_clusters, kafka_config, body, field
):
    use_clusters(kafka_config)
    client.force_login(operator)
    answer = client.post(
        "/api/clusters/test-kafka/kafka/topics/any-topic/messages",
        body,
        content_type="application/json",
    )
    assert_invalid(answer, field)


def test_a_blank_page_number_is_not_a_number(client, viewer):
    client.force_login(viewer)
    assert_invalid(client.get("/api/deadletters/letters", {"page": "\r"}), "page")


@pytest.mark.parametrize("confirm", [None, "yes", 1])
def test_it_refuses_a_peek_confirmation_that_is_not_a_boolean(
    client, operator, rabbit, rabbitmq_vhost, confirm
):
    client.force_login(operator)
    answer = client.post(
        f"{API}/queue/peek?vhost={rabbitmq_vhost}&name=anything",
        {"count": 1, "confirm": confirm},
        content_type="application/json",
    )
    assert_invalid(answer, "confirm")
