"""The request floor: sessions and the logged-in user from the cache, and gzip for large answers.

Counts, not timings: a logged-in request that does no work reads no database
row. Every security property still holds: logout, a password change, a
demotion or a deactivation take effect on the next request; a session outlives
a lost cache entry (it is written through to the database).
"""

from __future__ import annotations

import gzip
import json

import pytest
from csp.constants import NONE, SELF
from csp.utils import build_policy
from django.contrib import messages
from django.contrib.auth.models import Group
from django.contrib.sessions.backends.cached_db import KEY_PREFIX, SessionStore
from django.core.cache import cache
from django.db import connection
from django.http import HttpResponse
from django.test.utils import CaptureQueriesContext
from django.utils.functional import empty

from dashboard.core.compress import gzip_bytes
from dashboard.core.login import user_cache_key
from dashboard.core.middleware import MessageMiddleware

pytestmark = pytest.mark.django_db


def test_it_reads_no_database_row_for_a_logged_in_request(client, viewer):
    client.force_login(viewer)
    assert client.get("/kafka/").status_code == 302  # fills the user cache
    with CaptureQueriesContext(connection) as queries:
        response = client.get("/kafka/")
    assert response.status_code == 302 and "/login/" not in response["Location"]
    assert [q["sql"] for q in queries.captured_queries] == []


def test_the_page_header_shows_the_cached_role(client, admin_user_):
    client.force_login(admin_user_)
    client.get("/kafka/")
    html = client.get("/audit/").content.decode()
    assert '<span class="who-role">admin</span>' in html


def test_a_demoted_user_loses_the_role_at_once(client, make_user):
    boss = make_user("bea", "operator")
    boss.groups.add(Group.objects.get_or_create(name="admin")[0])
    client.force_login(boss)
    assert client.get("/audit/").status_code == 200
    assert cache.get(user_cache_key(boss.pk)) is not None
    boss.groups.remove(Group.objects.get(name="admin"))
    assert cache.get(user_cache_key(boss.pk)) is None
    refused = client.get("/audit/")
    assert refused.status_code == 403
    assert "with the operator role" in refused.content.decode()


def test_a_deleted_group_takes_its_role_with_it(client, make_user):
    boss = make_user("bo", "viewer")
    boss.groups.add(Group.objects.get_or_create(name="admin")[0])
    client.force_login(boss)
    assert client.get("/audit/").status_code == 200
    Group.objects.get(name="admin").delete()
    assert client.get("/audit/").status_code == 403


def test_a_deactivated_user_is_logged_out_at_once(client, viewer):
    client.force_login(viewer)
    assert client.get("/api/clusters/health").status_code == 200
    viewer.is_active = False
    viewer.save()
    assert client.get("/api/clusters/health").status_code == 401
    assert "/login/" in client.get("/kafka/")["Location"]


def test_a_password_change_ends_other_sessions(client, viewer):
    client.force_login(viewer)
    assert client.get("/api/clusters/health").status_code == 200
    viewer.set_password("a-new-password-123")
    viewer.save()
    assert client.get("/api/clusters/health").status_code == 401


def test_logout_ends_the_session_in_the_cache_and_the_database(client, viewer):
    client.force_login(viewer)
    key = client.session.session_key
    assert client.get("/api/clusters/health").status_code == 200
    assert client.post("/logout/").status_code == 302
    assert cache.get(KEY_PREFIX + key) is None
    assert client.get("/api/clusters/health").status_code == 401


def test_a_session_outlives_its_lost_cache_entry(client, viewer):
    client.force_login(viewer)
    cache.delete(KEY_PREFIX + client.session.session_key)
    cache.delete(user_cache_key(viewer.pk))
    assert client.get("/api/clusters/health").status_code == 200


def test_an_expired_session_is_refused(client, viewer):
    client.force_login(viewer)
    session = client.session
    session.set_expiry(-1)
    session.save()
    assert client.get("/api/clusters/health").status_code == 401


# -- gzip ---------------------------------------------------------------------------


def test_a_large_json_answer_comes_back_gzipped_when_asked(client, viewer):
    client.force_login(viewer)
    plain = client.get("/api/openapi.json")
    assert plain.status_code == 200 and not plain.has_header("Content-Encoding")
    assert len(plain.content) > 4096 and "Accept-Encoding" in plain["Vary"]
    packed = client.get("/api/openapi.json", headers={"accept-encoding": "gzip, br"})
    assert packed["Content-Encoding"] == "gzip"
    assert int(packed["Content-Length"]) == len(packed.content) < len(plain.content) / 3
    assert json.loads(gzip.decompress(packed.content)) == plain.json()


def test_small_and_streaming_answers_are_not_gzipped(client, viewer):
    client.force_login(viewer)
    small = client.get("/api/clusters/health", headers={"accept-encoding": "gzip"})
    assert small.status_code == 200 and len(small.content) < 4096
    assert not small.has_header("Content-Encoding")
    static = client.get("/static/js/tail.js", headers={"accept-encoding": "gzip"})
    assert static.status_code == 200 and static.streaming
    assert not static.has_header("Content-Encoding")


def test_gzip_hides_the_body_length_behind_a_random_header():
    data = b'{"value": "secret"}' * 500
    lengths = {len(gzip_bytes(data, 1)) for _ in range(20)}
    assert len(lengths) > 1
    assert all(gzip.decompress(gzip_bytes(data, 1)) == data for _ in range(3))


def test_the_policy_headers_are_django_csps_and_follow_the_settings(client, viewer, settings):
    client.force_login(viewer)
    assert client.get("/kafka/")["Content-Security-Policy"] == build_policy()
    settings.CONTENT_SECURITY_POLICY = {"DIRECTIVES": {"default-src": [NONE]}}
    settings.CONTENT_SECURITY_POLICY_REPORT_ONLY = {
        "DIRECTIVES": {"default-src": [SELF]},
        "EXCLUDE_URL_PREFIXES": ["/api/"],
    }
    page = client.get("/kafka/")
    assert page["Content-Security-Policy"] == "default-src 'none'"
    assert page["Content-Security-Policy-Report-Only"] == "default-src 'self'"
    assert "Content-Security-Policy-Report-Only" not in client.get("/api/clusters/health")


def test_messages_are_stored_when_added_and_no_storage_is_made_otherwise(rf):
    def view(request):
        return HttpResponse("ok")

    middleware = MessageMiddleware(view)
    quiet = rf.get("/")
    quiet.session = SessionStore()
    middleware(quiet)
    assert quiet._messages._wrapped is empty  # never built: nothing read or added
    told = rf.get("/")
    told.session = SessionStore()
    middleware.process_request(told)
    messages.info(told, "moved 3 messages")
    answer = middleware.process_response(told, HttpResponse("ok"))
    assert "messages" in answer.cookies
    shown = rf.get("/")
    shown.COOKIES["messages"] = answer.cookies["messages"].value
    shown.session = SessionStore()
    middleware.process_request(shown)
    assert [str(m) for m in messages.get_messages(shown)] == ["moved 3 messages"]
