"""ops/redis.sh gives the dashboard's Redis a maxmemory and the noeviction policy, on a
server it starts and on one it started earlier (a private redis-server on a free port)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import free_port

SCRIPT = Path(__file__).resolve().parent.parent / "ops" / "redis.sh"


def run(state: Path, port: int, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        env={**os.environ, "MQB_STATE_DIR": str(state), "MQB_REDIS_PORT": str(port), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def private_redis(tmp_path) -> Iterator[tuple[Path, int]]:
    port = free_port()
    try:
        yield tmp_path, port
    finally:
        run(tmp_path, port, "down")


def limits(port: int) -> tuple[int, str]:
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        maxmemory = client.config_get("maxmemory")["maxmemory"]
        policy = client.config_get("maxmemory-policy")["maxmemory-policy"]
        return int(str(maxmemory)), str(policy)
    finally:
        client.close()


def test_it_starts_redis_with_a_ceiling_that_never_evicts(private_redis):
    state, port = private_redis
    started = run(state, port, "up", MQB_REDIS_MAXMEMORY="64mb")
    assert started.returncode == 0, started.stderr
    assert limits(port) == (64 << 20, "noeviction")


def test_it_sets_the_ceiling_on_its_own_running_redis(private_redis):
    state, port = private_redis
    assert run(state, port, "up").returncode == 0
    client = redis.Redis(host="127.0.0.1", port=port)
    client.config_set("maxmemory", 0)
    client.config_set("maxmemory-policy", "allkeys-lru")  # as a Redis started before the fix
    client.close()
    again = run(state, port, "up", MQB_REDIS_MAXMEMORY="32mb")
    assert again.returncode == 0 and "already running" in again.stdout
    assert limits(port) == (32 << 20, "noeviction")
