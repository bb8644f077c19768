"""What needs attention on a cluster, as the overview writes it from a stored check.

Pure rendering of stored checks (no broker is asked): a node's resource alarms
link to the node in the management UI, under-replicated and offline partitions
link to their topics, every broker-supplied name is escaped and quoted, and a
healthy check says "nothing". The clustered tests show the same against real
nodes going down.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from asgiref.sync import async_to_sync

from brokers.base import Node, Overview
from dashboard.core.clusters import ClusterHealth, record_health

pytestmark = [pytest.mark.django_db]

HOSTILE = "<b>x</b>&y"


def store(slug: str, kind: str, address: str, overview: Overview) -> None:
    health = ClusterHealth(
        slug=slug,
        kind=kind,
        name=slug,
        address=address,
        ok=True,
        code="ok",
        message="",
        checked_at=datetime.now(UTC),
        elapsed_ms=5,
        overview=overview,
    )
    async_to_sync(record_health)(health)


def entry(page: str, slug: str) -> str:
    card = page.split(f'data-cluster="{slug}"')[1].split("</article>")[0]
    return card.split('data-field="attention"')[1].split("</dd>")[0]


def overview(kind: str, nodes: tuple[Node, ...], **counts: object) -> Overview:
    return Overview(
        kind=kind,
        product=kind,
        version="1",
        cluster_name="c",
        nodes=nodes,
        checked_at=datetime.now(UTC),
        **counts,  # type: ignore[arg-type]
    )


def test_alarms_and_partitions_are_written_out_with_links(client, viewer, use_clusters):
    store(
        "test-rabbitmq",
        "rabbitmq",
        "http://127.0.0.1:15672/",
        overview(
            "rabbitmq",
            (
                Node(name="rabbit@a", alarms=("memory", "disk")),
                Node(name=f"rabbit@{HOSTILE}", alarms=("memory",)),
                Node(name="rabbit@b"),
            ),
            queues=1,
            exchanges=1,
            connections=0,
            consumers=0,
            messages=0,
        ),
    )
    store(
        "test-kafka",
        "kafka",
        "127.0.0.1:9092",
        overview(
            "kafka",
            (Node(name="1"), Node(name="2", running=False)),
            topics=2,
            partitions=6,
            consumer_groups=0,
            under_replicated_partitions=4,
            offline_partitions=1,
            replication_topics=("orders", f"a{HOSTILE}"),
        ),
    )
    client.force_login(viewer)
    page = client.get("/").content.decode()

    rabbit = entry(page, "test-rabbitmq")
    assert (
        'memory alarm on rabbit@a: publishers are blocked: <a href="http://127.0.0.1:15672/#/nodes/'
        'rabbit%40a">node</a>'
    ) in rabbit
    assert "disk alarm on rabbit@a" in rabbit
    assert "memory alarm on rabbit@&lt;b&gt;x&lt;/b&gt;&amp;y" in rabbit
    assert "#/nodes/rabbit%40%3Cb%3Ex%3C%2Fb%3E%26y" in rabbit
    assert HOSTILE not in page

    kafka = entry(page, "test-kafka")
    assert "1 offline partition: " in kafka and "4 under-replicated partitions: " in kafka
    assert '<a href="/clusters/test-kafka/kafka/topics/orders/">orders</a>' in kafka
    assert '/clusters/test-kafka/kafka/topics/a%3Cb%3Ex%3C%2Fb%3E%26y/"' in kafka
    assert "a&lt;b&gt;x&lt;/<wbr>b&gt;&amp;y</a>" in kafka  # breakable: <wbr> after a slash

    api = client.get("/api/clusters/health").json()
    by_slug = {c["slug"]: c["overview"] for c in api["clusters"]}
    assert by_slug["test-kafka"]["under_replicated_partitions"] == 4
    assert by_slug["test-kafka"]["offline_partitions"] == 1
    assert by_slug["test-kafka"]["replication_topics"] == ["orders", f"a{HOSTILE}"]
    assert by_slug["test-rabbitmq"]["under_replicated_partitions"] is None


def test_a_healthy_check_says_nothing_and_an_unknown_one_unknown(client, viewer, use_clusters):
    store(
        "test-kafka",
        "kafka",
        "127.0.0.1:9092",
        overview(
            "kafka",
            (Node(name="1"),),
            topics=1,
            partitions=3,
            consumer_groups=0,
            under_replicated_partitions=0,
            offline_partitions=0,
        ),
    )
    client.force_login(viewer)
    page = client.get("/").content.decode()
    assert entry(page, "test-kafka").endswith(">nothing")
    assert entry(page, "test-rabbitmq").endswith(">unknown")  # never checked
