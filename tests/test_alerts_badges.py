"""The "N firing" alert badges with the Django client: on the overview over every cluster,
on the queue, topic and consumer-group pages for that cluster and entity only (silenced
alerts left out), the "Alert on this" link for operators, and the Alerts page's live
rows read from ``/api/alerts/shown``."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.utils import timezone

from dashboard.core.clusters import sync_cluster_rows
from dashboard.core.connections import close_all
from dashboard.models import Cluster, Silence
from tests.support import kafka as kafka_support
from tests.support.alerts import make_alert
from tests.support.kafka import SLUG as KAFKA
from tests.support.rabbitmq import declare, delete_queue, unique

RABBIT = "test-rabbitmq"
kit = kafka_support.kit
kafka_only = kafka_support.kafka_only


def badge(page: str) -> dict[str, Any]:
    """The badge's attributes, text and whether its link is hidden."""
    found = re.search(r'<span class="alerts-live"([^>]*)>(.*?)</span></a></span>', page, re.S)
    assert found, "no alert badge on the page"
    attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', found.group(1)))
    link = found.group(2)
    return {
        "firing": int(attrs["data-firing"]),
        "subjects": json.loads(html.unescape(attrs["data-subjects"])),
        "cluster": attrs["data-alerts-cluster"],
        "live": attrs.get("aria-live"),
        "hidden": " hidden>" in link.split("<span", 1)[0],
        "text": html.unescape(re.sub(r"<[^>]+>", "", link)),
    }


def silence(entity_glob: str) -> None:
    now = timezone.now()
    Silence.objects.create(
        matchers={"entity": entity_glob},
        starts_at=now,
        ends_at=now + timedelta(hours=1),
        reason="test",
    )


def other_cluster() -> Cluster:
    return Cluster.objects.get_or_create(slug="other-c", defaults={"kind": "kafka", "name": "O"})[0]


@pytest.mark.django_db
def test_the_overview_counts_firing_alerts_of_every_cluster_but_silenced_ones(
    client, viewer, use_clusters
):
    client.force_login(viewer)
    empty = badge(client.get("/").content.decode())
    assert empty["firing"] == 0 and empty["hidden"] and empty["live"] == "polite"

    rabbit = sync_cluster_rows()[RABBIT]
    make_alert(rabbit, "%2F/a")
    make_alert(rabbit, "%2F/b")
    make_alert(rabbit, "%2F/hushed")
    make_alert(rabbit, "%2F/c", state="pending")
    make_alert(rabbit, "%2F/d", state="resolved")
    make_alert(other_cluster(), "t")
    silence("*/hushed")
    page = client.get("/").content.decode()
    shown = badge(page)
    assert (shown["firing"], shown["hidden"], shown["text"]) == (3, False, "3 firing")
    assert shown["cluster"] == "" and shown["subjects"] == []
    assert 'href="/alerts/?state=firing"' in page
    assert "js/alerts_badge.js" in page
    assert "alert-on-this" not in page


@pytest.mark.django_db
def test_the_alerts_page_reads_its_rows_as_it_shows_them(client, viewer, use_clusters):
    rabbit = sync_cluster_rows()[RABBIT]
    resolved = make_alert(rabbit, "%2F/r", state="resolved", resolved_at=timezone.now())
    pending = make_alert(rabbit, "%2F/p", state="pending")
    firing = make_alert(rabbit, "%2F/f")
    elsewhere = make_alert(other_cluster(), "t")
    silence("*/f")
    client.force_login(viewer)
    page = client.get("/alerts/").content.decode()
    assert 'data-shown-url="/api/alerts/shown"' in page and "js/alerts.js" in page
    assert 'id="alert-ack-form"' not in page, "viewers get no acknowledge form"

    rows = client.get("/api/alerts/shown").json()["alerts"]
    assert [r["id"] for r in rows] == [elsewhere.pk, firing.pk, pending.pk, resolved.pk]
    assert {r["id"]: r["silenced"] for r in rows}[firing.pk] is True
    assert {r["id"]: r["silenced"] for r in rows}[elsewhere.pk] is False
    only = client.get("/api/alerts/shown", {"cluster": RABBIT, "state": "active"}).json()
    assert [r["id"] for r in only["alerts"]] == [firing.pk, pending.pk]
    assert client.get("/api/alerts/shown", {"state": "burning"}).status_code == 400


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config):
    use_clusters(rabbitmq_config)
    yield rabbitmq_config
    await close_all()


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
async def test_a_queue_page_counts_only_its_own_alerts(rabbit, rabbitmq_vhost, viewer, operator):
    name = unique("badge")
    declare(rabbitmq_vhost, name)
    entity = f"{quote(rabbitmq_vhost, safe='')}/{name}"

    def seed() -> None:
        cluster = sync_cluster_rows()[RABBIT]
        make_alert(cluster, entity)
        make_alert(cluster, entity, kind="no_consumers")
        make_alert(cluster, entity, kind="not_delivering", state="pending")
        make_alert(cluster, entity, kind="dlq_pending")  # it as a DLQ, in its vhost
        make_alert(cluster, f"other-vhost/{name}", kind="dlq_pending")  # same name elsewhere
        make_alert(cluster, f"{entity}-other")
        make_alert(cluster, name, kind="group_lag")  # a group's, not this queue's
        make_alert(other_cluster(), entity)

    await sync_to_async(seed)()
    url = f"/rabbitmq/{RABBIT}/queue"
    try:
        client = AsyncClient()
        await client.aforce_login(viewer)
        page = (await client.get(url, {"vhost": rabbitmq_vhost, "name": name})).content.decode()
        shown = badge(page)
        assert (shown["firing"], shown["text"], shown["cluster"]) == (3, "3 firing", RABBIT)
        assert shown["subjects"] == [f"entity:{entity}", f"dlq:{entity}"]
        assert f'href="/alerts/?state=firing&amp;cluster={RABBIT}"' in page
        assert "alert-on-this" not in page, "viewers create no rules"

        await client.aforce_login(operator)
        page = (await client.get(url, {"vhost": rabbitmq_vhost, "name": name})).content.decode()
        link = re.search(r'id="alert-on-this" href="([^"]+)"', page)
        assert link
        query = parse_qs(urlsplit(html.unescape(link.group(1))).query)
        assert query["kind"] == ["queue_depth"] and query["pattern"] == [name]
        assert query["cluster"] == [RABBIT] and query["syntax"] == ["exact"]
        await sync_to_async(silence)(f"*/{name}")
        page = (await client.get(url, {"vhost": rabbitmq_vhost, "name": name})).content.decode()
        assert badge(page)["firing"] == 0, "a DLQ alert's entity carries its vhost like a queue's"
    finally:
        delete_queue(rabbitmq_vhost, name)


@pytest.mark.kafka
@pytest.mark.django_db
def test_topic_and_group_pages_count_only_their_own_alerts(client, viewer, kafka_only, kit):
    topic = kit.topic(partitions=1)
    kit.fill(topic, 2, partition=0)
    group = kit.commit(kit.name("-badge"), {(topic, 0): 1})
    cluster = sync_cluster_rows()[KAFKA]
    make_alert(cluster, topic)
    make_alert(cluster, topic, kind="dlq_arrivals")
    make_alert(cluster, topic, kind="group_lag")  # a group named like the topic
    make_alert(cluster, group, kind="group_lag_seconds")
    make_alert(cluster, group, kind="group_empty", state="pending")
    make_alert(other_cluster(), group, kind="group_lag")
    client.force_login(viewer)

    topic_page = client.get(f"/clusters/{KAFKA}/kafka/topics/{topic}/").content.decode()
    shown = badge(topic_page)
    assert (shown["firing"], shown["cluster"]) == (2, KAFKA)
    assert shown["subjects"] == [f"entity:{topic}", f"dlq:{topic}"]

    group_page = client.get(f"/clusters/{KAFKA}/kafka/groups/{group}").content.decode()
    shown = badge(group_page)
    assert (shown["firing"], shown["subjects"]) == (1, [f"group:{group}"])
    assert shown["text"] == "1 firing" and not shown["hidden"]
