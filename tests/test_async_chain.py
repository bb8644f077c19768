"""The middleware chain is async end to end: under ASGI a request crosses no thread for it.

``async_client`` goes through Django's async handler, as Daphne does. Counts, not
timings: which functions ran in a thread (``sync_to_async``) while a logged-in
request was answered. Every security property of the request floor holds on this
path as on the sync one: login, logout, expiry, a password change, a deactivation
or a demotion taking effect at once, CSRF, the CSP and framing headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import AsyncToSync, SyncToAsync, iscoroutinefunction, sync_to_async
from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.cached_db import KEY_PREFIX
from django.core.cache import cache
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient

from dashboard.core.login import user_cache_key
from tests.support import kafka as kafka_support
from tests.support.threads import recording_hops

pytestmark = pytest.mark.django_db(transaction=True)

# Shared fixtures (see tests/support/kafka.py).
kafka_only = kafka_support.kafka_only
kit = kafka_support.kit
DJANGO_OWN = {"Signal.asend.<locals>.sync_send", "HttpResponseBase.close"}
"""what Django's ASGI handler runs in a thread for every request (request_started, close)"""


@pytest.fixture
def hops() -> Iterator[list[str]]:
    with recording_hops() as names:
        yield names


def test_every_middleware_runs_in_async_mode_without_an_adapter():
    handler: Any = ASGIHandler()
    layer = handler._middleware_chain
    names: list[str] = []
    while True:
        inner = getattr(layer, "__wrapped__", layer)  # Django's exception wrapper
        assert not isinstance(inner, SyncToAsync | AsyncToSync), f"a thread hop after {names}"
        if not hasattr(inner, "get_response"):
            break  # the handler's own view caller
        assert iscoroutinefunction(inner), type(inner).__name__
        names.append(type(inner).__name__)
        layer = inner.get_response
    assert len(names) == len(settings.MIDDLEWARE)
    assert handler._view_middleware
    assert all(iscoroutinefunction(hook) for hook in handler._view_middleware)


async def test_a_logged_in_health_request_hops_only_to_read_the_cluster_rows(
    async_client, viewer, hops
):
    await async_client.aforce_login(viewer)
    assert (await async_client.get("/api/clusters/health")).status_code == 200  # fills caches
    hops.clear()
    assert (await async_client.get("/api/clusters/health")).status_code == 200
    assert [name for name in hops if name not in DJANGO_OWN] == ["_read"]  # the cluster rows


@pytest.mark.kafka
async def test_the_kafka_browse_page_and_api_render_in_the_event_loop(
    async_client, viewer, kafka_only, kit
):
    """No sync_to_async of their own: the Kafka read runs on the read threads of the
    Kafka adapter and the decoding in asyncio's pool, the page renders in the loop."""
    topic = kit.topic()
    await sync_to_async(kit.fill)(topic, 30)
    await async_client.aforce_login(viewer)
    base = f"/clusters/{kafka_support.SLUG}/kafka/topics/{topic}/messages/"
    api = f"/api/clusters/{kafka_support.SLUG}/kafka/topics/{topic}/messages"
    for url in (base, api):
        assert (await async_client.get(url, {"limit": 5})).status_code == 200  # warm
        with recording_hops() as hops:
            answer = await async_client.get(url, {"limit": 5})
        assert answer.status_code == 200
        assert [name for name in hops if name not in DJANGO_OWN] == [], url
    page = (await async_client.get(base, {"limit": 5})).content.decode()
    assert page.count('class="record"') == 5


async def test_a_lost_cache_entry_is_read_from_the_database_in_a_thread(async_client, viewer, hops):
    await async_client.aforce_login(viewer)
    await sync_to_async(cache.delete)(KEY_PREFIX + async_client.session.session_key)
    await sync_to_async(cache.delete)(user_cache_key(viewer.pk))
    hops.clear()
    assert (await async_client.get("/api/clusters/health")).status_code == 200
    assert "_request_user" in hops
    hops.clear()
    assert (await async_client.get("/api/clusters/health")).status_code == 200
    assert "_request_user" not in hops  # back in the cache


async def test_it_asks_anonymous_visitors_to_log_in(async_client):
    api = await async_client.get("/api/clusters/health")
    assert api.status_code == 401 and api.json()["code"] == "unauthenticated"
    page = await async_client.get("/kafka/")
    assert page.status_code == 302 and page["Location"].startswith("/login/")


async def test_a_deactivated_user_is_logged_out_at_once(async_client, viewer):
    await async_client.aforce_login(viewer)
    assert (await async_client.get("/api/clusters/health")).status_code == 200
    viewer.is_active = False
    await viewer.asave()
    assert (await async_client.get("/api/clusters/health")).status_code == 401


async def test_a_password_change_ends_other_sessions(async_client, viewer):
    await async_client.aforce_login(viewer)
    assert (await async_client.get("/api/clusters/health")).status_code == 200
    await sync_to_async(viewer.set_password)("a-new-password-123")
    await viewer.asave()
    assert (await async_client.get("/api/clusters/health")).status_code == 401
    assert "/login/" in (await async_client.get("/kafka/"))["Location"]


async def test_a_demoted_user_loses_the_role_at_once(async_client, make_user):
    def promoted() -> Any:
        boss = make_user("bea", "operator")
        boss.groups.add(Group.objects.get_or_create(name="admin")[0])
        return boss

    boss = await sync_to_async(promoted)()
    await async_client.aforce_login(boss)
    assert (await async_client.get("/audit/")).status_code == 200
    await sync_to_async(lambda: boss.groups.remove(Group.objects.get(name="admin")))()
    assert (await async_client.get("/audit/")).status_code == 403


async def test_an_expired_session_is_refused(async_client, viewer):
    await async_client.aforce_login(viewer)
    session = await async_client.asession()
    await session.aset_expiry(-1)
    await session.asave()
    assert (await async_client.get("/api/clusters/health")).status_code == 401


async def test_logout_ends_the_session(async_client, viewer):
    await async_client.aforce_login(viewer)
    key = async_client.session.session_key
    assert (await async_client.post("/logout/")).status_code == 302
    assert await sync_to_async(cache.get)(KEY_PREFIX + key) is None
    assert (await async_client.get("/api/clusters/health")).status_code == 401


async def test_a_post_without_the_csrf_token_is_refused(viewer):
    strict = AsyncClient(enforce_csrf_checks=True)
    await strict.aforce_login(viewer)
    refused = await strict.post("/logout/")
    assert refused.status_code == 403


async def test_an_api_write_without_the_csrf_token_is_refused_as_json(operator):
    strict = AsyncClient(enforce_csrf_checks=True)
    await strict.aforce_login(operator)
    refused = await strict.post(
        "/api/deadletters/discard", {"ids": [1]}, content_type="application/json"
    )
    assert refused.status_code == 403 and refused.json()["code"] == "csrf_failed"


async def test_pages_carry_the_policy_and_framing_headers(async_client, viewer):
    await async_client.aforce_login(viewer)
    page = await async_client.get("/")
    assert page.status_code == 200
    assert "script-src 'self'" in page["Content-Security-Policy"]
    assert page["X-Frame-Options"] == "DENY"
    assert page["X-Content-Type-Options"] == "nosniff"
    assert "Cookie" in page["Vary"]


async def test_static_files_are_served_in_async_mode(async_client):
    static = await async_client.get("/static/js/tail.js")
    assert static.status_code == 200 and static.streaming
    source = await sync_to_async(Path(settings.BASE_DIR, "static", "js", "tail.js").read_bytes)()
    assert b"".join(static.streaming_content) == source  # a file: its sync iterator
