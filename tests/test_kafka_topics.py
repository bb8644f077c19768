"""The Kafka cluster page, topics list and topic detail, against the real Kafka."""

from __future__ import annotations

from dataclasses import replace

import pytest
from django.test import override_settings

from dashboard.core.templatetags.ui import breakable
from tests.support import kafka as support
from tests.support.kafka import SLUG

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]

# Shared fixtures (see tests/support/kafka.py).
kafka_only = support.kafka_only
kit = support.kit


def test_the_nav_link_goes_to_the_only_kafka_clusters_page(client, viewer, kafka_only):
    client.force_login(viewer)
    response = client.get("/kafka/")
    assert response.status_code == 302
    assert response["Location"] == f"/clusters/{SLUG}/kafka/"


def test_the_nav_link_lists_several_kafka_clusters(client, viewer, use_clusters, kafka_config):
    other = replace(kafka_config, slug="other-kafka", name="Other Kafka")
    use_clusters(kafka_config, other)
    client.force_login(viewer)
    response = client.get("/kafka/")
    page = response.content.decode()
    assert response.status_code == 200
    assert f'href="/clusters/{SLUG}/kafka/"' in page
    assert 'href="/clusters/other-kafka/kafka/"' in page
    assert "Test Kafka" in page and "Other Kafka" in page


def test_it_says_when_no_kafka_cluster_is_configured(client, viewer, use_clusters, rabbitmq_config):
    use_clusters(rabbitmq_config)
    client.force_login(viewer)
    response = client.get("/kafka/")
    assert response.status_code == 200
    assert "No Kafka cluster is configured" in response.content.decode()


def test_it_shows_the_cluster_with_its_brokers(client, viewer, kafka_only):
    client.force_login(viewer)
    response = client.get(f"/clusters/{SLUG}/kafka/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "Cluster id" in page and "controller" in page
    assert "127.0.0.1" in page and "9092" in page
    data = client.get(f"/api/clusters/{SLUG}/kafka").json()
    assert data["cluster_id"] and data["controller_id"] is not None
    assert data["brokers"][0]["port"] == 9092 and data["brokers"][0]["is_controller"]


def test_it_lists_topics_with_partitions_and_message_counts(client, viewer, kafka_only, kit):
    name = kit.topic(partitions=3)
    kit.fill(name, 5, partition=0)
    kit.fill(name, 2, partition=2)
    client.force_login(viewer)
    page = client.get(f"/clusters/{SLUG}/kafka/topics/", {"q": name}).content.decode()
    assert f'data-topic="{name}"' in page
    row = page.split(f'data-topic="{name}"')[1].split("</tr>")[0]
    assert '<td class="num">3</td>' in row  # partitions
    assert '<td class="num" data-field="messages">7</td>' in row
    data = client.get(f"/api/clusters/{SLUG}/kafka/topics", {"q": name}).json()
    (topic,) = data["topics"]
    assert topic["messages"] == 7 and topic["partitions"] == 3
    assert topic["replication_factor"] == 1 and topic["under_replicated"] == 0
    assert topic["cleanup_policy"] == "delete" and topic["compacted"] is False


def test_it_labels_counts_on_compacted_topics_as_estimates(client, viewer, kafka_only, kit):
    name = kit.topic(config={"cleanup.policy": "compact"})
    kit.produce(name, {"key": b"a", "value": b"1"}, {"key": b"a", "value": b"2"})
    client.force_login(viewer)
    page = client.get(f"/clusters/{SLUG}/kafka/topics/", {"q": name}).content.decode()
    row = page.split(f'data-topic="{name}"')[1].split("</tr>")[0]
    assert "(estimate)" in row
    data = client.get(f"/api/clusters/{SLUG}/kafka/topics", {"q": name}).json()
    assert data["topics"][0]["compacted"] is True


def test_it_hides_internal_topics_unless_asked(client, viewer, kafka_only):
    client.force_login(viewer)
    hidden = client.get(f"/api/clusters/{SLUG}/kafka/topics", {"q": "__consumer"}).json()
    assert hidden["topics"] == []
    shown = client.get(
        f"/api/clusters/{SLUG}/kafka/topics", {"q": "__consumer", "internal": "1"}
    ).json()
    assert [t["name"] for t in shown["topics"]] == ["__consumer_offsets"]
    assert shown["topics"][0]["internal"] is True


@override_settings(MQB_KAFKA_PAGE_SIZE=2)
def test_it_pages_and_filters_the_topics_list(client, viewer, kafka_only, kit):
    prefix = kit.name("-page")
    names = [kit.topic(f"{prefix}-{i}") for i in range(3)]
    client.force_login(viewer)
    first = client.get(f"/api/clusters/{SLUG}/kafka/topics", {"q": prefix}).json()
    second = client.get(f"/api/clusters/{SLUG}/kafka/topics", {"q": prefix, "page": 2}).json()
    assert first["total"] == 3 and first["pages"] == 2
    assert [t["name"] for t in first["topics"]] == names[:2]
    assert [t["name"] for t in second["topics"]] == names[2:]
    html = client.get(f"/clusters/{SLUG}/kafka/topics/", {"q": prefix}).content.decode()
    assert "Page 1 of 2" in html and 'rel="next"' in html


def test_it_shows_names_with_dots_underscores_and_dashes_distinctly(
    client, viewer, kafka_only, kit
):
    """a.b and a_b collide in Kafka's metric names. Kafka 4 refuses to create the
    second one; the dashboard never folds one into the other when showing or filtering."""
    from confluent_kafka import KafkaException

    base = kit.name()
    dotted, dashed, underscored = (
        kit.topic(f"{base}.x"),
        kit.topic(f"{base}-x"),
        kit.topic(f"{base}_y"),
    )
    with pytest.raises(KafkaException, match="collides"):
        kit.topic(f"{base}_x")
    kit.fill(dotted, 1)
    kit.fill(underscored, 2)
    client.force_login(viewer)
    data = client.get(f"/api/clusters/{SLUG}/kafka/topics", {"q": base}).json()
    counts = {t["name"]: t["messages"] for t in data["topics"]}
    assert counts == {dotted: 1, dashed: 0, underscored: 2}
    assert client.get(f"/api/clusters/{SLUG}/kafka/topics", {"q": f"{base}_x"}).json()["total"] == 0
    detail = client.get(f"/clusters/{SLUG}/kafka/topics/{dotted}/").content.decode()
    # The heading shows the dotted name (with a line-break chance after each separator).
    assert f'Topic <span class="name">{breakable(dotted)}</span>' in detail
    assert client.get(f"/clusters/{SLUG}/kafka/topics/{base}_x/").status_code == 404


def test_it_shows_a_topics_partitions_configs_and_readers(client, viewer, kafka_only, kit):
    name = kit.topic(partitions=2, config={"retention.ms": "3600000"})
    kit.fill(name, 4, partition=1)
    group = kit.commit(kit.name("-g"), {(name, 1): 1})
    client.force_login(viewer)
    response = client.get(f"/clusters/{SLUG}/kafka/topics/{name}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert "retention.ms" in page.split("Defaults")[0]  # non-default configs come first
    assert group in page
    data = client.get(f"/api/clusters/{SLUG}/kafka/topics/{name}").json()
    assert [(p["partition"], p["low"], p["high"]) for p in data["partitions"]] == [
        (0, 0, 0),
        (1, 0, 4),
    ]
    assert data["partitions"][1]["leader"] == 1 and data["partitions"][1]["isr"] == [1]
    assert data["configs"][0]["is_default"] is False
    readers = client.get(f"/api/clusters/{SLUG}/kafka/topics/{name}/groups").json()
    assert [(g["group_id"], g["lag"]) for g in readers["groups"]] == [(group, 3)]


def test_a_deleted_topic_is_a_404_not_a_500(client, viewer, kafka_only, kit):
    name = kit.topic()
    client.force_login(viewer)
    assert client.get(f"/clusters/{SLUG}/kafka/topics/{name}/").status_code == 200
    kit.admin.delete_topics([name], operation_timeout=15)[name].result()
    for path in (
        f"/clusters/{SLUG}/kafka/topics/{name}/",
        f"/clusters/{SLUG}/kafka/topics/{name}/messages/",
        f"/api/clusters/{SLUG}/kafka/topics/{name}",
        f"/api/clusters/{SLUG}/kafka/topics/{name}/messages",
    ):
        response = client.get(path)
        assert response.status_code == 404, path
        assert name in response.content.decode()


def test_it_answers_404_for_unknown_or_non_kafka_clusters(client, viewer, use_clusters):
    client.force_login(viewer)
    assert client.get("/clusters/nope/kafka/topics/").status_code == 404
    response = client.get("/api/clusters/test-rabbitmq/kafka/topics")
    assert response.status_code == 404
    assert "not a Kafka cluster" in response.json()["error"]
