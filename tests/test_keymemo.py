"""A web process answers sessions and users from its memory; every write drops them everywhere.

Real Redis throughout. In this process: what is read is kept (a raw Redis change
that bypasses the cache is not seen, which proves the answer came from memory),
a write through the cache drops it at once, a write in another process drops it
through the channel, a read that raced a write is not kept, nothing outlives
its key's expiry, and nothing is answered from memory while the subscription is
down. Across processes: two Daphne processes, one logged-out or deactivated
user, and the other refuses them with the memo set to an hour.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
import redis
import requests
from django.core.cache import cache

from dashboard.core import keymemo
from dashboard.core.login import _MISSING, _acache_get, user_cache_key
from tests.conftest import PYTHON, ROOT, free_port, stop_process, wait_for_port
from tests.settings import RUN_ID
from tests.support.served_db import served_database, served_env

SESSION_PREFIX = "django.contrib.sessions.cached_db"


def wait_for(condition: Callable[[], object], what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.02)


@pytest.fixture
def memo() -> keymemo.KeyMemo:
    made = keymemo.memo_for(cache.memo_location(), cache.key_prefix, 30)  # type: ignore[attr-defined]
    assert made.wait_live(10), "the memo never subscribed"
    return made


@pytest.fixture
def key() -> Iterator[str]:
    name = f"{SESSION_PREFIX}memo-{uuid.uuid4().hex}"
    yield name
    cache.delete(name)


def raw() -> redis.Redis:
    return redis.Redis.from_url(cache.memo_location())  # type: ignore[attr-defined]


def dumped(value: object) -> bytes:
    return cache._cache._serializer.dumps(value)  # type: ignore[attr-defined,no-any-return]


async def test_a_read_is_kept_and_a_write_through_the_cache_drops_it(memo, key):
    cache.set(key, {"n": 1})
    assert await _acache_get("default", key) == {"n": 1}
    made = cache.make_and_validate_key(key)
    assert memo.get(made) is not None
    # Changed behind the cache's back: this process still answers what it read.
    raw().set(made, dumped({"n": 2}), keepttl=True)
    assert await _acache_get("default", key) == {"n": 1}
    cache.set(key, {"n": 3})  # through the cache: dropped before set() returns
    assert memo.get(made) is None
    assert await _acache_get("default", key) == {"n": 3}
    cache.delete(key)
    assert await _acache_get("default", key) is _MISSING


async def test_a_write_in_another_process_drops_the_key(memo, key):
    cache.set(key, "before")
    assert await _acache_get("default", key) == "before"
    made = cache.make_and_validate_key(key)
    assert memo.get(made) is not None
    await asyncio.to_thread(
        subprocess.run,
        [PYTHON, "manage.py", "shell", "-c",
         f"from django.core.cache import cache; cache.set({key!r}, 'after')"],
        cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for(lambda: memo.get(made) is None, "the other process's write dropped the key")
    assert await _acache_get("default", key) == "after"


def test_other_keys_are_neither_kept_nor_published(memo):
    assert not keymemo.memoized("auditlog:actions")
    assert keymemo.memoized(user_cache_key(7))
    assert keymemo.memoized(f"{SESSION_PREFIX}abc")


def test_a_read_that_raced_a_write_is_not_kept(memo, key):
    made = cache.make_and_validate_key(key)
    generation = memo.generation  # taken before the read, as a request does
    memo.drop([made])  # a write lands while the read is on its way
    assert not memo.put(made, b"stale", 60_000, generation)
    assert memo.get(made) is None
    assert memo.put(made, b"fresh", 60_000, memo.generation)
    assert memo.get(made) == b"fresh"
    memo.drop([keymemo.DROP_ALL])
    assert memo.get(made) is None


async def test_nothing_is_kept_past_the_keys_expiry(memo, key):
    cache.set(key, "short-lived", timeout=1)
    assert await _acache_get("default", key) == "short-lived"
    made = cache.make_and_validate_key(key)
    assert memo.get(made) is not None
    await asyncio.sleep(1.05)
    assert memo.get(made) is None
    assert await _acache_get("default", key) is _MISSING


async def test_nothing_is_answered_from_memory_while_the_subscription_is_down(memo, key):
    cache.set(key, "kept")
    assert await _acache_get("default", key) == "kept"
    made = cache.make_and_validate_key(key)
    client = raw()
    name = f"mqb-keymemo-{os.getpid()}"
    ids = [c["id"] for c in client.client_list() if c.get("name") == name]
    assert ids, "the memo's subscription is not on Redis"
    for client_id in ids:
        client.client_kill_filter(_id=client_id)
    wait_for(lambda: not memo.live, "the memo noticed its subscription ended")
    assert len(memo) == 0 and memo.get(made) is None
    # Changed while nobody listens: never answered from before.
    raw().set(made, dumped("changed while down"), keepttl=True)
    assert await _acache_get("default", key) == "changed while down"
    assert memo.wait_live(10)
    assert memo.get(made) is None  # emptied when it subscribed again
    assert await _acache_get("default", key) == "changed while down"


# -- two web processes ----------------------------------------------------------------

PASSWORD = "memo-password-123"


@pytest.fixture(scope="module")
def two_webs(tmp_path_factory, redis_url) -> Iterator[tuple[str, str, dict[str, str]]]:
    """Two Daphne processes on one database and Redis, memo kept an hour: URLs, env."""
    db = served_database("memo", tmp_path_factory.mktemp("memo"))
    env = served_env(db, MQB_USER_PASSWORD=PASSWORD, MQB_AUTH_MEMO_SECONDS="3600")
    for username in ("memo-viewer", "memo-other"):
        subprocess.run(
            [PYTHON, "manage.py", "ensure_user", username, "--role", "viewer"],
            cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    processes, urls, logs = [], [], []
    try:
        for name in ("a", "b"):
            port = free_port()
            log = open(ROOT / "var" / "log" / f"test-memo-{name}-{RUN_ID}.log", "wb")  # noqa: SIM115
            logs.append(log)
            daphne = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
            process = subprocess.Popen(
                [*daphne, "dashboard.asgi:application"],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            processes.append(process)
            wait_for_port(port, process)
            urls.append(f"http://127.0.0.1:{port}")
        yield urls[0], urls[1], env
    finally:
        for process in processes:
            stop_process(process)
        for log in logs:
            log.close()


def log_in(url: str, username: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{url}/login/", timeout=10).raise_for_status()
    answer = session.post(
        f"{url}/login/",
        data={
            "username": username,
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{url}/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:300]
    return session


def health(session: requests.Session, url: str) -> int:
    return session.get(f"{url}/api/clusters/health", timeout=10).status_code


def test_a_logout_on_one_web_process_ends_the_session_on_the_other(two_webs):
    a, b, _env = two_webs
    session = log_in(a, "memo-viewer")
    for _ in range(5):  # B reads the session and the user, and keeps them
        assert health(session, b) == 200
    # The logout answer deletes the browser's cookie; someone who kept it sends it again.
    kept = requests.Session()
    kept.cookies.set("sessionid", session.cookies["sessionid"])
    answer = session.post(
        f"{a}/logout/",
        headers={"X-CSRFToken": str(session.cookies["csrftoken"]), "Referer": f"{a}/"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302
    # The memo keeps for an hour: only the published drop can end it on B.
    wait_for(lambda: health(kept, b) == 401, "B refused the logged-out session")
    assert health(kept, a) == 401


def test_a_user_deactivated_by_a_command_is_refused_by_a_web_process(two_webs):
    _a, b, env = two_webs
    session = log_in(b, "memo-other")
    for _ in range(5):
        assert health(session, b) == 200
    subprocess.run(
        [PYTHON, "manage.py", "shell", "-c",
         "from django.contrib.auth.models import User\n"
         "user = User.objects.get(username='memo-other')\n"
         "user.is_active = False\n"
         "user.save()"],
        cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    wait_for(lambda: health(session, b) == 401, "B refused the deactivated user")
