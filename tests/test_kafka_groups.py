"""Consumer groups: list, detail with lag, and offset resets (preview, apply, refusals)."""

from __future__ import annotations

from typing import Any

import pytest

from dashboard.models import AuditEntry
from tests.support import kafka as support
from tests.support.kafka import SLUG, LiveConsumer

pytestmark = [pytest.mark.django_db, pytest.mark.kafka]

# Shared fixtures (see tests/support/kafka.py).
kafka_only = support.kafka_only
kit = support.kit


def groups_api(client: Any, q: str) -> dict[str, Any]:
    response = client.get(f"/api/clusters/{SLUG}/kafka/groups", {"q": q})
    assert response.status_code == 200, response.content
    return {g["group_id"]: g for g in response.json()["groups"]}


@pytest.fixture
def topic_with_commits(kit):
    name = kit.topic(partitions=2)
    kit.fill(name, 10, partition=0)
    kit.fill(name, 4, partition=1)
    return name


def test_it_lists_groups_with_state_topics_and_lag(
    client, viewer, kafka_only, kit, topic_with_commits
):
    name = topic_with_commits
    prefix = kit.name("-grp")
    lagging = kit.commit(f"{prefix}-lagging", {(name, 0): 3, (name, 1): 4})
    deleted = kit.commit(f"{prefix}-deleted", {(name, 0): 1})
    kit.admin.delete_consumer_groups([deleted], request_timeout=10)[deleted].result()
    client.force_login(viewer)
    groups = groups_api(client, prefix)
    row = groups[lagging]
    assert (row["state"], row["lag"], row["committed_partitions"]) == ("Empty", 7, 2)
    assert row["topics"] == [name] and row["members"] == 0 and row["has_commits"]
    assert row["type"] == "classic"
    assert deleted not in groups
    html = client.get(f"/clusters/{SLUG}/kafka/groups/", {"q": prefix}).content.decode()
    lag_cell = html.split(f'data-group="{lagging}"')[1].split('data-field="lag">')[1]
    assert lag_cell.startswith("7<")


def test_a_group_without_commits_is_not_zero_lag(
    client, viewer, kafka_only, kit, topic_with_commits
):
    group = kit.name("-idle")
    live = LiveConsumer(group, topic_with_commits)
    try:
        live.wait_until_assigned()
        client.force_login(viewer)
        row = groups_api(client, group)[group]
        assert row["lag"] is None and row["has_commits"] is False
        assert row["state"] == "Stable" and row["members"] == 1
        html = client.get(f"/clusters/{SLUG}/kafka/groups/", {"q": group}).content.decode()
        assert "no commits" in html.split(f'data-group="{group}"')[1].split("</tr>")[0]
    finally:
        live.close()
        kit.track_group(group)


def test_it_shows_a_groups_members_and_lag_per_partition(
    client, viewer, kafka_only, kit, topic_with_commits
):
    name = topic_with_commits
    group = kit.name("-detail")
    kit.commit(group, {(name, 0): 6})
    live = LiveConsumer(group, name)
    try:
        live.wait_until_assigned()
        client.force_login(viewer)
        data = client.get(f"/api/clusters/{SLUG}/kafka/groups/{group}").json()
        assert data["state"] == "Stable" and data["is_active"]
        (member,) = data["members"]
        assert member["client_id"] == "live-consumer-test" and member["host"]
        assert sorted(map(tuple, member["assignment"])) == [(name, 0), (name, 1)]
        rows = {(p["topic"], p["partition"]): p for p in data["partitions"]}
        assert (rows[(name, 0)]["committed"], rows[(name, 0)]["end"], rows[(name, 0)]["lag"]) == (
            6,
            10,
            4,
        )
        assert rows[(name, 1)]["committed"] is None and rows[(name, 1)]["lag"] is None
        html = client.get(f"/clusters/{SLUG}/kafka/groups/{group}").content.decode()
        assert "live-consumer-test" in html and "no commit" in html
    finally:
        live.close()
        kit.track_group(group)


def test_a_unicode_group_id_is_listed_and_opened(
    client, viewer, kafka_only, kit, topic_with_commits
):
    group = kit.name("-grüße/组/🙂")
    kit.commit(group, {(topic_with_commits, 0): 2})
    client.force_login(viewer)
    assert group in groups_api(client, group)
    html = client.get(f"/clusters/{SLUG}/kafka/groups/", {"q": group}).content.decode()
    assert group in html
    from django.urls import reverse

    url = reverse("kafka-group", args=[SLUG, group])
    assert "%F0%9F%99%82" in url
    page = client.get(url)
    assert page.status_code == 200 and group in page.content.decode()
    api = client.get(reverse("api:api-kafka-group", args=[SLUG, group])).json()
    assert api["group_id"] == group and api["lag"] == 8


def test_an_unknown_group_is_404(client, viewer, kafka_only, kit):
    client.force_login(viewer)
    missing = kit.name("-never")
    assert client.get(f"/clusters/{SLUG}/kafka/groups/{missing}").status_code == 404
    assert client.get(f"/api/clusters/{SLUG}/kafka/groups/{missing}").status_code == 404


def reset(client: Any, group: str, **body: Any) -> Any:
    return client.post(
        f"/api/clusters/{SLUG}/kafka/reset-offsets/{group}", body, content_type="application/json"
    )


def test_it_previews_then_applies_an_offset_reset(
    client, admin_user_, kafka_only, kit, topic_with_commits
):
    name = topic_with_commits
    group = kit.commit(kit.name("-reset"), {(name, 0): 9, (name, 1): 4})
    client.force_login(admin_user_)
    preview = reset(client, group, topic=name, to="earliest")
    assert preview.status_code == 200
    plan = preview.json()
    assert not plan["applied"]
    assert [(c["partition"], c["current"], c["new"]) for c in plan["changes"]] == [
        (0, 9, 0),
        (1, 4, 0),
    ]
    detail = client.get(f"/api/clusters/{SLUG}/kafka/groups/{group}").json()
    assert [p["committed"] for p in detail["partitions"]] == [9, 4]  # a preview writes nothing
    applied = reset(client, group, topic=name, partition=0, to="offset", offset=5, apply=True)
    assert applied.json()["applied"]
    detail = client.get(f"/api/clusters/{SLUG}/kafka/groups/{group}").json()
    assert [p["committed"] for p in detail["partitions"]] == [5, 4]
    entry = AuditEntry.objects.get(action="kafka.reset_offsets")
    assert entry.outcome == "ok" and entry.username == "ada" and entry.target == f"group:{group}"
    assert entry.parameters["changes"] == [{"topic": name, "partition": 0, "from": 9, "to": 5}]


def test_it_resets_to_latest_a_time_and_clamps_offsets(
    client, admin_user_, kafka_only, kit, topic_with_commits
):
    name = topic_with_commits
    group = kit.commit(kit.name("-reset2"), {(name, 0): 1})
    client.force_login(admin_user_)
    latest = reset(client, group, topic=name, to="latest").json()
    assert [c["new"] for c in latest["changes"]] == [10, 4]
    future = reset(
        client, group, topic=name, to="timestamp", timestamp="2999-01-01T00:00:00Z"
    ).json()
    assert [c["new"] for c in future["changes"]] == [10, 4]
    assert "no record at or after" in future["changes"][0]["note"]
    past = reset(client, group, topic=name, to="timestamp", timestamp="0").json()
    assert [c["new"] for c in past["changes"]] == [0, 0]
    clamped = reset(client, group, topic=name, partition=1, to="offset", offset=99).json()
    assert clamped["changes"][0]["new"] == 4 and "clamped" in clamped["changes"][0]["note"]


def test_it_refuses_to_reset_an_active_group(
    client, admin_user_, kafka_only, kit, topic_with_commits
):
    group = kit.name("-active")
    live = LiveConsumer(group, topic_with_commits)
    try:
        live.wait_until_assigned()
        client.force_login(admin_user_)
        response = reset(client, group, topic=topic_with_commits, to="earliest", apply=True)
        assert response.status_code == 409
        assert "active member" in response.json()["error"]
        html = client.post(
            f"/clusters/{SLUG}/kafka/reset-offsets/{group}",
            {"topic": topic_with_commits, "to": "earliest", "action": "preview"},
        )
        assert html.status_code == 409 and "active member" in html.content.decode()
        assert AuditEntry.objects.get(action="kafka.reset_offsets").outcome == "refused"
    finally:
        live.close()
        kit.track_group(group)


def test_reset_offsets_needs_the_admin_role(
    client, operator, viewer, kafka_only, kit, topic_with_commits
):
    group = kit.commit(kit.name("-roles"), {(topic_with_commits, 0): 1})
    for user in (viewer, operator):
        client.force_login(user)
        response = reset(client, group, topic=topic_with_commits, to="earliest", apply=True)
        assert response.status_code == 403
        page = client.post(
            f"/clusters/{SLUG}/kafka/reset-offsets/{group}",
            {"topic": topic_with_commits, "to": "earliest", "action": "apply"},
        )
        assert page.status_code == 403
    assert AuditEntry.objects.filter(action="kafka.reset_offsets", outcome="refused").count() == 4


def test_the_reset_form_previews_then_applies(
    client, admin_user_, kafka_only, kit, topic_with_commits
):
    group = kit.commit(kit.name("-form"), {(topic_with_commits, 0): 8})
    client.force_login(admin_user_)
    url = f"/clusters/{SLUG}/kafka/reset-offsets/{group}"
    assert client.get(url).status_code == 200
    form = {"topic": topic_with_commits, "partition": "0", "to": "earliest"}
    preview = client.post(url, {**form, "action": "preview"}).content.decode()
    assert 'id="plan"' in preview and 'data-field="new">0<' in preview
    assert 'value="apply"' in preview
    applied = client.post(url, {**form, "action": "apply"})
    assert applied.status_code == 302
    done = client.get(applied["Location"]).content.decode()
    assert "Offsets reset for 1 partition" in done
    bad = client.post(url, {**form, "to": "offset", "action": "preview"})
    assert bad.status_code == 400 and "needs an offset" in bad.content.decode()


def test_it_escapes_hostile_group_ids(client, viewer, kafka_only, kit, topic_with_commits):
    evil = kit.name('-<img src=x onerror="alert(1)">')
    kit.commit(evil, {(topic_with_commits, 0): 1})
    client.force_login(viewer)
    listing = client.get(f"/clusters/{SLUG}/kafka/groups/", {"q": evil}).content.decode()
    assert "<img" not in listing and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in listing
    from django.urls import reverse

    detail = client.get(reverse("kafka-group", args=[SLUG, evil]))
    assert detail.status_code == 200 and "<img" not in detail.content.decode()
