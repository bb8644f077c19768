"""Peeked bodies kept for download stay within per-user and total caps, in the real Redis,
and that Redis never evicts Celery's or Channels' keys."""

from __future__ import annotations

import uuid

import pytest
import redis

from dashboard.browse.rabbitmq.peek_store import load_body, store_bodies
from dashboard.core.connections import close_all
from tests.support.rabbitmq import declare, delete_queue, drain, publish, q, unique, wait_for_depth

KIB = 1024


@pytest.fixture
def store(settings, redis_url):
    """A private key prefix in the test Redis, small caps, and everything removed after."""
    prefix = f"mqb-test-{uuid.uuid4().hex[:8]}"
    settings.MQB_CHANNEL_PREFIX = prefix
    settings.REDIS_URL = redis_url
    settings.MQB_RABBITMQ_PEEK_STORE_USER_BYTES = 10 * KIB
    settings.MQB_RABBITMQ_PEEK_STORE_TOTAL_BYTES = 25 * KIB
    yield settings
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{prefix}:*"))
    if keys:
        client.delete(*keys)
    client.close()


def body(n: int, fill: bytes = b"x") -> bytes:
    return fill * (n * KIB)


async def test_a_users_oldest_peeks_make_room_for_the_newest(store):
    first = await store_bodies([(1, body(4, b"a")), (2, body(2, b"b"))], user="1")
    second = await store_bodies([(1, body(3, b"c"))], user="1")
    assert first.token and second.token and second.dropped == 0
    third = await store_bodies([(1, body(5, b"d"))], user="1")  # 6 + 3 + 5 > 10 KiB
    assert third.token is not None and third.dropped == 1
    assert await load_body(first.token, 1) is None and await load_body(first.token, 2) is None
    assert await load_body(second.token, 1) == body(3, b"c")
    assert await load_body(third.token, 1) == body(5, b"d")


async def test_one_peek_over_the_user_cap_is_shown_but_not_kept(store):
    kept = await store_bodies([(1, body(2))], user="1")
    too_big = await store_bodies([(1, body(6)), (2, body(6))], user="1")
    assert too_big.token is None and "MQB_RABBITMQ_PEEK_STORE_USER_BYTES" in too_big.note
    assert kept.token is not None and await load_body(kept.token, 1) == body(2)


async def test_a_full_store_never_drops_another_users_peeks(store):
    others = [await store_bodies([(1, body(9))], user=str(n)) for n in (1, 2)]
    mine = await store_bodies([(1, body(8))], user="3")  # 18 + 8 > 25 KiB
    assert mine.token is None and "full" in mine.note
    assert "MQB_RABBITMQ_PEEK_STORE_TOTAL_BYTES" in mine.note
    for other in others:
        assert other.token is not None and await load_body(other.token, 1) == body(9)
    small = await store_bodies([(1, body(7))], user="3")
    assert small.token is not None  # 25 KiB exactly still fits


async def test_the_counts_stay_exact_after_expiry(store):
    store.MQB_RABBITMQ_PEEK_TTL = 1
    old = await store_bodies([(1, body(9))], user="1")
    assert old.token is not None
    client = redis.Redis.from_url(store.REDIS_URL)
    total = f"{store.MQB_CHANNEL_PREFIX}:rabbitmq-peek:total"
    assert int(client.get(total) or 0) == 9 * KIB
    # Expiry is at the score; push it into the past instead of sleeping.
    client.zadd(f"{store.MQB_CHANNEL_PREFIX}:rabbitmq-peek:all", {old.token: 0})
    client.close()
    store.MQB_RABBITMQ_PEEK_TTL = 900
    new = await store_bodies([(1, body(10))], user="2")
    assert new.token is not None and new.dropped == 0
    client = redis.Redis.from_url(store.REDIS_URL)
    assert int(client.get(total) or 0) == 10 * KIB
    assert client.hget(f"{store.MQB_CHANNEL_PREFIX}:rabbitmq-peek:user-bytes", "1") is None
    client.close()


async def test_an_unreachable_redis_keeps_the_peek(store):
    store.REDIS_URL = "redis://127.0.0.1:1/0"
    stored = await store_bodies([(1, b"x")], user="1")
    assert stored.token is None and "Redis" in stored.note


def test_the_redis_never_evicts_celery_or_channels_keys(redis_url):
    client = redis.Redis.from_url(redis_url)
    try:
        assert client.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
        assert int(str(client.config_get("maxmemory")["maxmemory"])) > 0
    finally:
        client.close()


@pytest.mark.rabbitmq
@pytest.mark.django_db(transaction=True)
async def test_a_peek_over_the_cap_still_shows_its_messages(
    store, async_client, operator, use_clusters, rabbitmq_config, rabbitmq_vhost
):
    use_clusters(rabbitmq_config)
    name = unique("peek-cap")
    declare(rabbitmq_vhost, name)
    try:
        publish(rabbitmq_vhost, name, "a" * 6 * KIB, "b" * 6 * KIB)
        wait_for_depth(rabbitmq_vhost, name, 2)
        await async_client.aforce_login(operator)
        response = await async_client.post(
            f"/api/clusters/test-rabbitmq/rabbitmq/queue/peek?vhost={q(rabbitmq_vhost)}&name={name}",
            {"count": 5, "confirm": True},
            content_type="application/json",
        )
        assert response.status_code == 200, response.content
        data = response.json()
        assert len(data["messages"]) == 2 and not data["kept_for_download"]
        assert "per user" in data["download_note"]
        assert all(m["download_url"] is None for m in data["messages"])
        page = await async_client.post(
            "/rabbitmq/test-rabbitmq/queue/messages",
            {"vhost": rabbitmq_vhost, "name": name, "count": "1"},
            follow=True,
        )
        assert page.status_code == 200
        assert b'id="message-1"' in page.content and b'id="peek-not-kept"' not in page.content
        assert len(drain(rabbitmq_vhost, name)) == 2
    finally:
        delete_queue(rabbitmq_vhost, name)
        await close_all()
