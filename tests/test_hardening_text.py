"""A NUL (U+0000) or a lone surrogate in what users send is a 400 naming where, never a 500.

PostgreSQL's text cannot hold a NUL, and UTF-8 cannot encode a lone surrogate
(JSON's ``"\\ud800"``). Query parameters with a NUL are refused before any view;
rules, silences and policies name the field; any other NUL that reaches
PostgreSQL (a note, a filter inside a body) is the database's refusal, a 400.
These run on the suite's database (PostgreSQL under ``make test``, SQLite too).
"""

from __future__ import annotations

import json

import pytest
from django.db import connection
from django.test import Client

from dashboard.models import AlertRule, RequeueSchedule, RetryPolicy, Silence

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def admin(use_clusters, admin_user_) -> Client:
    client = Client(raise_request_exception=False)
    client.force_login(admin_user_)
    return client


def post(client: Client, path: str, body: str):
    return client.post(path, body, content_type="application/json")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/api/deadletters/letters?text=a%00b", "text"),
        ("/api/deadletters/groups?dlq=a%00b", "dlq"),
        ("/api/deadletters/groups?x%00=1", "x\\0"),
        ("/deadletters/?text=a%00", "text"),
        ("/deadletters/?q=%00", "q"),
        ("/consumers/?q=%00", "q"),
        ("/audit/?q=%00", "q"),
        ("/api/audit?q=%00", "q"),
    ],
)
def test_a_nul_in_a_query_parameter_is_a_400_naming_it(admin, path, name):
    answer = admin.get(path)
    assert answer.status_code == 400, (path, answer.content[:300])
    if path.startswith("/api/"):
        body = answer.json()
        assert (body["code"], body["field"]) == ("invalid", name)
        assert "NUL" in body["error"]
    else:
        assert "NUL character" in answer.content.decode()


def test_the_same_query_without_a_nul_is_answered(admin):
    assert admin.get("/api/deadletters/letters?text=a%01b").status_code == 200
    assert admin.get("/deadletters/?text=%C3%A9").status_code == 200


RULE = {
    "kind": "queue_depth", "cluster": "", "syntax": "glob", "pattern": "",
    "comparison": "gt", "threshold": 1,
}  # fmt: skip


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/api/deadletters/policies", '{"name": "a\\u0000b"}', "name"),
        ("/api/deadletters/policies", '{"name": "a\\ud800b"}', "name"),
        ("/api/deadletters/policies", '{"name": "ok", "match_dlq": "x\\udfff"}', "match_dlq"),
        ("/api/deadletters/policies", '{"name": "ok", "match_reason": "\\u0000"}', "match_reason"),
        ("/api/alerts/rules", json.dumps({**RULE, "name": "a\x00"}), "name"),
        ("/api/alerts/rules", json.dumps({**RULE, "name": "ok", "pattern": "q\x00*"}), "pattern"),
        ("/api/alerts/rules", json.dumps({**RULE, "name": "ok", "pattern": "\ud800"}), "pattern"),
        (
            "/api/alerts/silences",
            '{"matchers": {"rule": "x"}, "duration_seconds": 60, "reason": "r\\u0000"}',
            "reason",
        ),
        (
            "/api/alerts/silences",
            '{"matchers": {"entity": "\\udc00"}, "duration_seconds": 60, "reason": "r"}',
            "entity",
        ),
    ],
)
def test_a_rule_or_silence_with_unstorable_text_is_a_400_naming_the_field(admin, path, body, field):
    answer = post(admin, path, body)
    assert answer.status_code == 400, answer.content[:300]
    assert answer.json()["field"] == field, answer.json()
    assert not RetryPolicy.objects.exists()
    assert not AlertRule.objects.exists()
    assert not Silence.objects.exists()


def test_a_nul_that_reaches_the_database_is_a_400_and_nothing_is_stored(admin):
    # A schedule's group (a fingerprint) is looked up as it comes: PostgreSQL refuses the
    # NUL in the query (a 400 from its DataError, nothing stored); SQLite finds no group.
    answer = post(admin, "/api/deadletters/schedules", '{"group": "a\\u0000", "delay": 60}')
    assert answer.status_code == 400, answer.content[:300]
    if connection.vendor == "postgresql":
        assert answer.json()["code"] == "invalid"
        assert "NUL character" in answer.json()["error"], answer.json()
    assert not RequeueSchedule.objects.exists()
