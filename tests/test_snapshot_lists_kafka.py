"""The topics and groups lists served from a real collector's snapshot: what Kafka has,
with its age, the same rows and pages as a live read; Refresh now reads Kafka; what
the collector does not sample (internal topics) is read live and says so."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest

from dashboard.metrics import snapshot_lists
from tests.support import kafka as support
from tests.support.snapshot_lists import (
    INTERVAL,
    KAFKA_SLUG,
    api,
    kafka_config,
    run_collector,
    until,
)

pytestmark = [pytest.mark.django_db, pytest.mark.kafka, pytest.mark.rabbitmq, pytest.mark.redis]

kit = support.kit
TOPICS = f"/api/clusters/{KAFKA_SLUG}/kafka/topics"
GROUPS = f"/api/clusters/{KAFKA_SLUG}/kafka/groups"
TOPICS_PAGE = f"/clusters/{KAFKA_SLUG}/kafka/topics/"
GROUPS_PAGE = f"/clusters/{KAFKA_SLUG}/kafka/groups/"


@pytest.fixture(scope="module")
def collector(served_db, rabbitmq_vhost, redis_url, tmp_path_factory):
    yield from run_collector(served_db, rabbitmq_vhost, tmp_path_factory.mktemp("snap-k"))


@pytest.fixture
def kafka(use_clusters, settings):
    use_clusters(kafka_config())
    settings.MQB_KAFKA_PAGE_SIZE = 2
    snapshot_lists.forget()


@pytest.fixture
def made(kit):
    """Three topics of one prefix (1, 2 and 3 partitions, a compacted one) and three
    groups with commits (lag 5, 0 and on two topics)."""
    prefix = kit.name("-snap")
    topics = [
        kit.topic(f"{prefix}-a", partitions=1),
        kit.topic(f"{prefix}-b", partitions=2, config={"cleanup.policy": "compact"}),
        kit.topic(f"{prefix}-c", partitions=3),
    ]
    kit.fill(topics[0], 7)
    kit.fill(topics[1], 3, partition=1)
    groups = [
        kit.commit(f"{prefix}-g1", {(topics[0], 0): 2}),
        kit.commit(f"{prefix}-g2", {(topics[0], 0): 7}),
        kit.commit(f"{prefix}-g3", {(topics[0], 0): 7, (topics[1], 1): 1}),
    ]
    return prefix, topics, groups


def rows(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return list(data[key])


def every_page(client: Any, path: str, key: str, **params: str) -> list[dict[str, Any]]:
    found, page = [], 1
    while True:
        data = api(client, path, page=str(page), **params)
        found += data[key]
        if page >= data["pages"]:
            return found
        page += 1


def test_the_lists_show_what_kafka_has_with_their_age_and_match_a_live_read(
    client, viewer, kafka, collector, made
):
    prefix, topics, groups = made
    client.force_login(viewer)
    data = until(
        lambda: api(client, TOPICS, q=prefix),
        lambda d: d["source"] == "snapshot" and d["total"] == 3,
        collector,
    )
    age = time.time() - datetime.fromisoformat(data["as_of"]).timestamp()
    assert 0 <= age <= 3 * INTERVAL + 15
    until(
        lambda: api(client, GROUPS, q=prefix),
        lambda d: (
            d["source"] == "snapshot"
            and d["total"] == 3
            and all(g["lag"] is not None for g in d["groups"])
        ),
        collector,
    )
    for path, key in ((TOPICS, "topics"), (GROUPS, "groups")):
        for page in ("1", "2", "9"):
            snap = api(client, path, q=prefix, page=page)
            live = api(client, path, q=prefix, page=page, live="1")
            assert (snap["source"], live["source"]) == ("snapshot", "live")
            assert rows(snap, key) == rows(live, key), (path, page)
            for field in ("total", "page", "pages", "per_page", "name_filter"):
                assert snap[field] == live[field], field
    shown = {t["name"]: t for t in every_page(client, TOPICS, "topics", q=prefix)}
    assert [shown[t]["partitions"] for t in topics] == [1, 2, 3]
    assert [shown[t]["messages"] for t in topics] == [7, 3, 0]
    assert shown[topics[1]]["cleanup_policy"] == "compact"
    assert shown[topics[0]]["replication_factor"] == 1
    by_id = {g["group_id"]: g for g in every_page(client, GROUPS, "groups", q=prefix)}
    assert [by_id[g]["lag"] for g in groups] == [5, 0, 2]
    assert by_id[groups[2]]["topics"] == sorted(topics[:2])
    assert by_id[groups[2]]["committed_partitions"] == 2
    assert {by_id[g]["state"] for g in groups} == {"Empty"}
    for page in (TOPICS_PAGE, GROUPS_PAGE):
        html = client.get(page, {"q": prefix}).content.decode()
        assert 'data-source="snapshot"' in html and 'id="refresh-now"' in html
        html = client.get(page, {"q": prefix, "live": "1"}).content.decode()
        assert 'data-source="live"' in html and "asked for a live read" in html


def test_refresh_now_shows_a_topic_created_after_the_snapshot(
    client, viewer, kafka, collector, made, kit
):
    prefix, _, _ = made
    client.force_login(viewer)
    until(
        lambda: api(client, TOPICS, q=prefix),
        lambda d: d["source"] == "snapshot" and d["total"] == 3,
        collector,
    )
    for attempt in range(5):
        before = api(client, TOPICS, q=prefix)
        late = kit.topic(f"{prefix}-late{attempt}")
        after = api(client, TOPICS, q=prefix)
        if after["as_of"] == before["as_of"]:
            break  # no sample in between: the snapshot predates the topic
    else:
        raise AssertionError("a sample came between every create and read")
    assert after["source"] == "snapshot" and after["total"] == before["total"]
    fresh = api(client, TOPICS, q=f"{prefix}-late{attempt}", live="1")
    assert fresh["source"] == "live" and [t["name"] for t in fresh["topics"]] == [late]
    assert api(client, TOPICS, q=prefix, live="1")["total"] == before["total"] + 1


def test_internal_topics_are_read_live_and_it_says_why(client, viewer, kafka, collector, made):
    client.force_login(viewer)
    data = api(client, TOPICS, q="__consumer_offsets", internal="1")
    assert data["source"] == "live" and "internal topics" in data["live_reason"]
    assert [t["name"] for t in data["topics"]] == ["__consumer_offsets"]
    html = client.get(TOPICS_PAGE, {"internal": "1"}).content.decode()
    assert 'id="live-note"' in html and "internal topics" in html


def test_a_topics_readers_come_from_the_snapshot_however_many_groups_the_cluster_has(
    client, viewer, kafka, collector, made, settings
):
    # Three groups may be asked live. The shared Kafka holds many more groups (other
    # tests'), so asking the first three of all of them would miss these; the sample
    # knows which groups read the topic.
    prefix, topics, groups = made
    settings.MQB_KAFKA_TOPIC_GROUPS_MAX = 3
    client.force_login(viewer)
    until(
        lambda: api(client, GROUPS, q=prefix),
        lambda d: d["source"] == "snapshot" and d["total"] == 3,
        collector,
    )
    readers_api = f"/api/clusters/{KAFKA_SLUG}/kafka/topics/{topics[0]}/groups"
    data = api(client, readers_api)
    assert data["complete"] is True and data["known_from"] is not None, data
    assert {g["group_id"]: g["lag"] for g in data["groups"]} == dict(
        zip(groups, [5, 0, 0], strict=True)
    )
    assert (data["checked"], data["total"]) == (3, 3)
    by_id = {g["group_id"]: g for g in data["groups"]}
    assert by_id[groups[2]]["partitions"] == 1
    html = client.get(f"/clusters/{KAFKA_SLUG}/kafka/topics/{topics[0]}/").content.decode()
    assert 'id="readers-source"' in html and "MQB_KAFKA_TOPIC_GROUPS_MAX" not in html
    for gid in groups:
        assert f">{gid}</a>" in html

    # A topic nobody reads: no group is asked at all, and that is the whole answer.
    unread = api(client, f"/api/clusters/{KAFKA_SLUG}/kafka/topics/{topics[2]}/groups")
    assert (unread["groups"], unread["complete"]) == ([], True)
