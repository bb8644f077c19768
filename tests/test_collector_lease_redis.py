"""The Redis lease (SQLite installations) against the real Redis: bound to its holder's
connection, like the PostgreSQL advisory lock to its session.

Each lease here is a separate ``RedisLease`` with its own connection, as each collector
process has; ``CLIENT KILL`` ends a holder's connection the way a ``kill -9`` of its
process does (its kernel closes the socket, Redis drops the client). The collectors
themselves, killed and paused, are in ``test_collector_lease.py``.
"""

from __future__ import annotations

import uuid

import pytest
import redis
from django.conf import settings

from dashboard.collector.lease import PAUSED_SESSION_FLOOR, RedisLease, holder_client

pytestmark = pytest.mark.redis


@pytest.fixture
def make_lease(settings):
    settings.MQB_CHANNEL_PREFIX = f"{settings.MQB_CHANNEL_PREFIX}-{uuid.uuid4().hex[:8]}"
    made: list[RedisLease] = []

    def make(ttl: float = 1.0) -> RedisLease:
        lease = RedisLease(ttl)
        made.append(lease)
        return lease

    yield make
    for lease in made:
        lease.release()
        lease.client.close()
        lease.client.connection_pool.disconnect()


def _kill_connection(lease: RedisLease) -> None:
    """End the lease's Redis connection from the server side, as a dead process's is."""
    assert lease.client_id is not None
    with redis.Redis.from_url(settings.REDIS_URL) as admin:
        assert admin.client_kill_filter(_id=lease.client_id) == 1


def test_the_value_names_the_holders_connection(make_lease):
    leader = make_lease()
    assert leader.try_acquire()
    held = leader.client.get(leader.key)
    assert held == leader.me.encode()
    assert holder_client(held) == leader.client_id == leader.client.client_id()


def test_a_standby_does_not_take_a_lease_whose_holder_is_connected(make_lease):
    leader, standby = make_lease(), make_lease()
    assert leader.try_acquire()
    assert not standby.try_acquire()
    assert leader.renew()
    assert not standby.try_acquire()
    assert leader.client.get(leader.key) == leader.me.encode()


def test_a_standby_takes_the_lease_at_once_when_the_holders_connection_is_gone(make_lease):
    leader, standby = make_lease(), make_lease()
    assert leader.try_acquire()
    assert leader.client.pttl(leader.key) > 1000, "the key would still live on"
    _kill_connection(leader)
    assert standby.try_acquire()
    assert standby.client.get(standby.key) == standby.me.encode()
    assert standby.renew()


def test_a_leader_whose_connection_was_replaced_has_lost_the_lease(make_lease):
    leader, standby = make_lease(), make_lease()
    assert leader.try_acquire()
    _kill_connection(leader)
    assert standby.try_acquire()
    assert not leader.renew(), "its new connection is not the one the value named"
    assert standby.renew()
    assert standby.client.get(standby.key) == standby.me.encode()


def test_a_leader_whose_connection_was_replaced_gives_the_key_back_even_if_no_one_took_it(
    make_lease,
):
    leader, standby = make_lease(), make_lease()
    assert leader.try_acquire()
    _kill_connection(leader)
    assert not leader.renew()
    assert leader.client.get(leader.key) is None
    assert standby.try_acquire()


def test_of_two_standbys_that_find_the_holder_gone_only_one_takes_the_lease(make_lease):
    leader, first, second = make_lease(), make_lease(), make_lease()
    assert leader.try_acquire()
    _kill_connection(leader)
    assert [first.try_acquire(), second.try_acquire()] == [True, False]
    assert not second.try_acquire(), "the new holder is connected"


def test_the_key_outlives_a_holder_that_stopped_renewing_by_the_paused_session_ttl(make_lease):
    """A paused leader keeps its connection: only the TTL, as long as PostgreSQL's paused
    session, ends its lease (the collectors' paused test shows it)."""
    leader = make_lease(ttl=1.0)
    assert leader.ttl == PAUSED_SESSION_FLOOR
    assert leader.try_acquire()
    assert leader.client.pttl(leader.key) > 1000 * (PAUSED_SESSION_FLOOR - 2)
    assert make_lease(ttl=5.0).ttl == 15.0


def test_a_value_without_a_client_id_is_left_to_expire(make_lease):
    """A holder that named no connection (Redis refused CLIENT ID) is never presumed dead."""
    standby = make_lease()
    standby.client.set(standby.key, b"elsewhere:1:abc", px=60_000)
    assert holder_client(b"elsewhere:1:abc") is None
    assert not standby.try_acquire()
    standby.client.delete(standby.key)
    assert standby.try_acquire()


@pytest.fixture
def restricted_redis(settings):
    """``REDIS_URL`` as a Redis user of this test's own whose ACL refuses ``rule``'s
    commands (deleted afterwards)."""
    admin = redis.Redis.from_url(settings.REDIS_URL)
    users: list[str] = []

    def restrict(rule: str) -> None:
        name, password = f"mqb-test-lease-{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        admin.execute_command("ACL", "SETUSER", name, "on", f">{password}", "~*", "&*",
                              "+@all", rule)  # fmt: skip
        users.append(name)
        host = settings.REDIS_URL.split("://", 1)[1]
        settings.REDIS_URL = f"redis://{name}:{password}@{host}"

    yield restrict
    for name in users:
        admin.execute_command("ACL", "DELUSER", name)
    admin.close()


@pytest.mark.parametrize("rule", ["-client|list", "-client"])
def test_a_redis_that_refuses_client_commands_leaves_the_configured_ttl(
    restricted_redis, make_lease, rule
):
    restricted_redis(rule)
    leader, standby = make_lease(ttl=1.0), make_lease(ttl=1.0)
    assert leader.try_acquire()
    assert not leader.sessions
    assert leader.me == leader.base, "the value names no connection"
    assert 0 < leader.client.pttl(leader.key) <= 1000
    assert not standby.try_acquire()
    assert leader.renew()
    assert 0 < leader.client.pttl(leader.key) <= 1000
