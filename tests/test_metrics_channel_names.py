"""Channel group names: always valid for Channels, never two entities in one group."""

from __future__ import annotations

import re

from channels.layers import BaseChannelLayer

from dashboard.core.channel_groups import (
    cluster_group,
    consumer_group_group,
    group_name,
    queue_group,
    topic_group,
)

VALID = re.compile(r"^[a-zA-Z0-9_.-]{1,99}$")


def test_it_keeps_plain_names_readable():
    assert cluster_group("local-rabbitmq") == "cluster.local-rabbitmq"
    assert topic_group("local-kafka", "orders") == "topic.local-kafka.orders"
    assert queue_group("r", "/", "orders").startswith("queue.r._")
    assert queue_group("r", "/", "orders").endswith(".orders")


def test_it_makes_any_name_valid():
    names = [
        "/",
        "a b",
        "ümlaut",
        "x" * 300,
        "a.b",
        "with/slash",
        "<script>",
        "",
        "_leading",
        "é" * 90,
    ]
    layer = BaseChannelLayer()
    for name in names:
        for group in (
            queue_group("local-rabbitmq", name, name),
            topic_group("local-kafka", name),
            consumer_group_group("local-kafka", name),
        ):
            assert VALID.match(group), group
            assert layer.require_valid_group_name(group)


def test_it_never_merges_two_entities():
    groups = {
        queue_group("c", "a.b", "c"),
        queue_group("c", "a", "b.c"),
        queue_group("c", "_x", "y"),
        queue_group("c", "x", "y"),
        topic_group("c", "a.b"),
        topic_group("c", "a_b"),
        topic_group("c", "x" * 200),
        topic_group("c", "x" * 201),
    }
    assert len(groups) == 8


def test_a_hashed_part_cannot_equal_a_real_name():
    hashed = group_name("topic", "c", "needs hashing").split(".")[-1]
    assert hashed.startswith("_")
    assert group_name("topic", "c", hashed) != group_name("topic", "c", "needs hashing")


def test_the_health_loop_and_the_helper_agree_on_cluster_groups():
    slug = "a" * 50  # the longest slug the configuration accepts
    assert cluster_group(slug) == f"cluster.{slug}"
