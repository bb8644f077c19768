"""Produce (operator) and purge (admin) on Kafka: roles, validation, audit, refusals."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from dashboard.models import AuditEntry
from tests.support import kafka as support
from tests.support.kafka import SLUG

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]

# Shared fixtures (see tests/support/kafka.py).
kafka_only = support.kafka_only
kit = support.kit


def produce(client: Any, topic: str, **body: Any) -> Any:
    return client.post(
        f"/api/clusters/{SLUG}/kafka/topics/{topic}/messages", body, content_type="application/json"
    )


def purge(client: Any, topic: str, **body: Any) -> Any:
    return client.post(
        f"/api/clusters/{SLUG}/kafka/topics/{topic}/purge", body, content_type="application/json"
    )


def read_all(client: Any, topic: str) -> Any:
    url = f"/api/clusters/{SLUG}/kafka/topics/{topic}/messages"
    return client.get(url, {"start": "oldest", "limit": 100}).json()["records"]


def test_an_operator_produces_with_key_headers_and_formats(client, operator, kafka_only, kit):
    name = kit.topic(partitions=2)
    client.force_login(operator)
    response = produce(
        client,
        name,
        partition=1,
        key="AAEC",
        key_format="base64",
        value='{"ok": true}',
        value_format="json",
        headers=[
            ["h", "1"],
            {"key": "h", "value": None},
            {"key": "b", "value": "/w==", "format": "base64"},
        ],
    )
    assert response.status_code == 201, response.content
    assert (response.json()["partition"], response.json()["offset"]) == (1, 0)
    (record,) = read_all(client, name)
    # Control characters are UTF-8 too: JSON escapes them, no base64 needed.
    assert (record["key"]["encoding"], record["key"]["data"]) == ("utf-8", "\x00\x01\x02")
    assert record["value"]["format"] == "json"
    assert [(h["key"], h["encoding"], h["value"]) for h in record["headers"]] == [
        ("h", "utf-8", "1"),
        ("h", None, None),
        ("b", "base64", "/w=="),
    ]
    tombstone = produce(client, name, key="k", value=None)
    assert tombstone.status_code == 201
    entry = AuditEntry.objects.filter(action="kafka.produce").first()
    assert entry is not None
    assert entry.outcome == "ok" and entry.username == "otto" and entry.target == f"topic:{name}"


def test_the_produce_form_redirects_to_the_new_record(client, operator, kafka_only, kit):
    name = kit.topic()
    client.force_login(operator)
    url = f"/clusters/{SLUG}/kafka/topics/{name}/produce/"
    assert client.get(url).status_code == 200
    response = client.post(
        url, {"key": "", "headers": "a: 1\na\n", "value": "hello", "value_format": "text"}
    )
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Produced to partition 0 at offset 0" in page and "hello" in page
    (record,) = read_all(client, name)
    assert record["key"] is None
    assert [(h["key"], h["value"]) for h in record["headers"]] == [("a", "1"), ("a", None)]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"value": "{not json", "value_format": "json"}, "not valid JSON"),
        ({"value": "%%%", "value_format": "base64"}, "not valid base64"),
        ({"value": "x", "value_format": "yaml"}, "format must be one of"),
        ({"value": "x", "partition": 9}, "no partition 9"),
        ({"value": 3}, "strings or null"),
        ({"value": "x", "headers": "nope"}, "headers must be"),
    ],
)
def test_it_refuses_bad_records_clearly(client, operator, kafka_only, kit, body, message):
    name = kit.topic()
    client.force_login(operator)
    response = produce(client, name, **body)
    assert response.status_code in (400, 404)
    assert message in response.json()["error"]
    assert read_all(client, name) == []


@pytest.mark.parametrize("body", ["[null, null]", '"x"', "null", "3"])
def test_it_refuses_a_body_that_is_not_an_object(client, operator, kafka_only, kit, body):
    name = kit.topic()
    client.force_login(operator)
    url = f"/api/clusters/{SLUG}/kafka/topics/{name}/messages"
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 400
    assert "must be a JSON object" in response.json()["error"]
    assert read_all(client, name) == []


def test_producing_needs_the_operator_role_and_an_existing_topic(
    client, viewer, operator, kafka_only, kit
):
    name = kit.topic()
    client.force_login(viewer)
    assert produce(client, name, value="x").status_code == 403
    assert (
        client.post(f"/clusters/{SLUG}/kafka/topics/{name}/produce/", {"value": "x"}).status_code
        == 403
    )
    refused = AuditEntry.objects.filter(action="kafka.produce")
    assert [e.outcome for e in refused] == ["refused", "refused"]
    client.force_login(operator)
    missing = kit.name("-missing")
    assert produce(client, missing, value="x").status_code == 404
    assert missing not in kit.admin.list_topics(timeout=5).topics


def test_an_admin_purges_a_topic_and_the_audit_keeps_the_offsets(
    client, admin_user_, kafka_only, kit
):
    name = kit.topic(partitions=2)
    kit.fill(name, 5, partition=0)
    kit.fill(name, 3, partition=1)
    client.force_login(admin_user_)
    response = purge(client, name)
    assert response.status_code == 200, response.content
    result = response.json()
    assert result["deleted"] == 8
    assert [(p["low_before"], p["high_before"], p["low_after"]) for p in result["partitions"]] == [
        (0, 5, 5),
        (0, 3, 3),
    ]
    assert read_all(client, name) == []
    entry = AuditEntry.objects.get(action="kafka.purge")
    assert entry.outcome == "ok" and entry.parameters["deleted"] == 8
    assert entry.parameters["offsets"][0] == {
        "partition": 0, "low_before": 0, "high_before": 5, "low_after": 5,
    }  # fmt: skip


def test_it_purges_a_single_partition_from_the_page(client, admin_user_, kafka_only, kit):
    name = kit.topic(partitions=2)
    kit.fill(name, 2, partition=0)
    kit.fill(name, 2, partition=1)
    client.force_login(admin_user_)
    url = f"/clusters/{SLUG}/kafka/topics/{name}/purge/"
    assert client.get(url).status_code == 200
    response = client.post(url, {"partition": "1"})
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Deleted 2 records" in page
    assert [r["partition"] for r in read_all(client, name)] == [0, 0]


def test_it_refuses_to_purge_a_compacted_topic(client, admin_user_, kafka_only, kit):
    name = kit.topic(config={"cleanup.policy": "compact"})
    kit.produce(name, {"key": b"a", "value": b"1"})
    client.force_login(admin_user_)
    response = purge(client, name)
    assert response.status_code == 409
    assert (
        "compacted" in response.json()["error"]
        and "Nothing was deleted" in response.json()["error"]
    )
    assert len(read_all(client, name)) == 1
    assert AuditEntry.objects.get(action="kafka.purge").outcome == "refused"
    page = client.get(f"/clusters/{SLUG}/kafka/topics/{name}/purge/").content.decode()
    assert "cannot be purged" in page


def test_purge_needs_the_admin_role(client, operator, kafka_only, kit):
    name = kit.topic()
    kit.fill(name, 1)
    client.force_login(operator)
    assert purge(client, name).status_code == 403
    assert client.post(f"/clusters/{SLUG}/kafka/topics/{name}/purge/", {}).status_code == 403
    assert len(read_all(client, name)) == 1


def test_a_protected_cluster_needs_the_typed_topic_name(
    client, admin_user_, use_clusters, kafka_config, kit
):
    use_clusters(replace(kafka_config, protected=True))
    name = kit.topic()
    kit.fill(name, 2)
    client.force_login(admin_user_)
    refused = purge(client, name, confirm="wrong")
    assert refused.status_code == 400 and "type the topic name" in refused.json()["error"]
    assert len(read_all(client, name)) == 2
    assert purge(client, name, confirm=name).json()["deleted"] == 2


def test_a_read_only_cluster_refuses_writes(client, admin_user_, use_clusters, kafka_config, kit):
    use_clusters(replace(kafka_config, read_only=True))
    name = kit.topic()
    client.force_login(admin_user_)
    response = produce(client, name, value="x")
    assert response.status_code == 409 and "read-only" in response.json()["error"]
    assert purge(client, name).status_code == 409


def test_api_writes_need_the_csrf_token(kafka_only, kit, operator):
    from django.test import Client

    name = kit.topic()
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    assert produce(client, name, value="x").status_code == 403
    client.get(f"/clusters/{SLUG}/kafka/topics/{name}/produce/")  # sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    response = client.post(
        f"/api/clusters/{SLUG}/kafka/topics/{name}/messages",
        {"value": "x"},
        content_type="application/json",
        headers={"X-CSRFToken": token},
    )
    assert response.status_code == 201
