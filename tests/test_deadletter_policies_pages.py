"""The retry policies page, a rule's form and the JSON API: roles, audit with before and after,
errors naming their field, order, modes, the count of matches now and the letter page's
decisions."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from dashboard.core import clusters
from dashboard.deadletters.policies import engine
from dashboard.models import AuditEntry, DeadLetter, RetryPolicy

pytestmark = [pytest.mark.django_db(transaction=True)]

API = "/api/deadletters/policies"
FORM = {
    "name": "orders later", "cluster": "", "syntax": "glob", "match_dlq": "orders*",
    "match_origin": "", "match_reason": "", "match_exception_class": "",
    "match_exception_message": "", "action": "retry", "max_attempts": "3",
    "delay_seconds": "60", "factor": "2", "cap_seconds": "3600", "jitter": "0",
    "enabled": "on", "dry_run": "on",
}  # fmt: skip


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(response) -> str:
    return html.unescape(response.content.decode())


def letter(n: int, dlq: str = "orders.dlq", **fields) -> DeadLetter:
    cluster = clusters.sync_cluster_rows()["test-rabbitmq"]
    return DeadLetter.objects.create(
        cluster=cluster, dlq=dlq, capture_key=f"k{n}", fingerprint="f" * 32,
        origin_exchange="orders", origin_routing_key="order.created", reason="rejected",
        exception_class="OrderRejected", **fields,
    )  # fmt: skip


def test_viewers_and_operators_read_but_only_admins_change_rules(
    use_clusters, viewer, operator, admin_user_
):
    for user in (viewer, operator):
        client = client_for(user)
        assert client.get("/deadletters/policies/").status_code == 200
        assert client.get(API).status_code == 200
        assert client.post("/deadletters/policies/new", FORM).status_code == 403
        assert client.get("/deadletters/policies/new").status_code == 403
        refused = client.post(API, {"name": "x"}, content_type="application/json")
        assert refused.status_code == 403
    assert not RetryPolicy.objects.exists()
    refusals = AuditEntry.objects.filter(action="deadletters.policy_create", outcome="refused")
    assert refusals.count() == 2

    admin = client_for(admin_user_)
    done = admin.post("/deadletters/policies/new", FORM, follow=True)
    assert "Rule 'orders later' created (dry run)." in text(done)
    policy = RetryPolicy.objects.get()
    assert (policy.dry_run, policy.enabled, policy.match_dlq) == (True, True, "orders*")
    entry = AuditEntry.objects.get(action="deadletters.policy_create", outcome="ok")
    assert entry.username == "ada" and entry.parameters["before"] is None
    assert entry.parameters["after"]["match_dlq"] == "orders*"
    page = text(client_for(viewer).get("/deadletters/policies/"))
    assert "orders later" in page and 'data-mode="dry_run"' in page
    assert "Switch dry run off" not in page and "New rule" not in page


def test_every_change_is_audited_with_before_and_after(use_clusters, admin_user_):
    admin = client_for(admin_user_)
    created = admin.post(
        API, {**FORM, "max_attempts": 3, "dry_run": True}, content_type="application/json"
    )
    assert created.status_code == 200, created.content
    first = created.json()
    assert (first["mode"], first["position"], first["stats"]["matched"]) == ("dry_run", 0, 0)
    second = admin.post(API, {"name": "second", "dry_run": False}, content_type="application/json")
    assert second.json()["position"] == 1 and second.json()["mode"] == "active"

    updated = admin.put(
        f"{API}/{first['id']}", {**FORM, "name": "renamed", "max_attempts": 5, "dry_run": True},
        content_type="application/json",
    )  # fmt: skip
    assert updated.json()["max_attempts"] == 5
    entry = AuditEntry.objects.get(action="deadletters.policy_update")
    assert entry.parameters["before"]["name"] == "orders later"
    assert entry.parameters["after"]["name"] == "renamed"
    assert entry.parameters["after"]["max_attempts"] == 5

    moved = admin.post(
        f"{API}/{second.json()['id']}/move", {"to": 0}, content_type="application/json"
    )
    assert moved.json()["position"] == 0
    assert [p["name"] for p in admin.get(API).json()["policies"]] == ["second", "renamed"]

    mode = admin.post(f"/deadletters/policies/{first['id']}/mode", {"mode": "active"}, follow=True)
    assert "Rule 'renamed' is active." in text(mode)
    entry = AuditEntry.objects.get(action="deadletters.policy_mode")
    assert entry.parameters["before"]["dry_run"] is True
    assert entry.parameters["after"]["dry_run"] is False

    assert admin.delete(f"{API}/{first['id']}").json() == {"deleted": True}
    entry = AuditEntry.objects.get(action="deadletters.policy_delete")
    assert entry.parameters["before"]["name"] == "renamed" and entry.parameters["after"] is None
    assert admin.delete(f"{API}/{first['id']}").status_code == 404
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"deadletters.policy_create", "deadletters.policy_move"} <= actions


def test_an_invalid_pattern_is_a_400_naming_the_field(use_clusters, admin_user_, settings):
    admin = client_for(admin_user_)
    bad = admin.post(
        API,
        {"name": "bad", "syntax": "regex", "match_exception_message": "(x"},
        content_type="application/json",
    )
    assert bad.status_code == 400
    assert bad.json()["field"] == "match_exception_message"
    settings.MQB_DLQ_POLICY_MAX_PATTERN = 5
    long = admin.post(
        API, {"name": "long", "match_dlq": "abcdefg"}, content_type="application/json"
    )
    assert (long.status_code, long.json()["field"]) == (400, "match_dlq")
    form = admin.post("/deadletters/policies/new", {**FORM, "match_dlq": "abcdefg"})
    assert form.status_code == 400
    assert 'name="match_dlq" class="mono" value="abcdefg" aria-invalid="true"' in text(form)
    assert not RetryPolicy.objects.exists()


def test_the_form_counts_the_letters_it_would_match_now(use_clusters, admin_user_):
    letter(1)
    letter(2)
    letter(3, dlq="payments.dlq")
    letter(4, status="requeued")
    admin = client_for(admin_user_)
    checked = admin.post("/deadletters/policies/new", {**FORM, "check": "1"})
    assert checked.status_code == 200
    assert 'data-count="2"' in text(checked)
    assert not RetryPolicy.objects.exists()


def test_the_letter_page_shows_the_decisions_and_the_list_their_stats(
    use_clusters, admin_user_, operator
):
    admin = client_for(admin_user_)
    admin.post(API, {"name": "watch", "dry_run": True}, content_type="application/json")
    admin.post(
        API,
        {"name": "park it", "dry_run": False, "action": "park"},
        content_type="application/json",
    )
    row = letter(9)
    engine.apply_at_capture(row.cluster_id, [{"capture_key": "k9", "dlq": "orders.dlq"}])
    page = text(client_for(operator).get(f"/deadletters/{row.pk}/"))
    assert 'id="letter-policies"' in page and 'id="letter-parked"' in page
    assert 'data-decision="retry" data-dry-run="1"' in page and 'data-decision="park"' in page
    retry_row = page.split('data-decision="retry"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="num">1</td>' in retry_row, "the first retry reads as retry 1, not 0"
    listing = text(client_for(operator).get("/deadletters/policies/"))
    assert "retried 1, parked 0" in listing
    assert re.search(r"retry up to \d+ times?, first after [^;<]+; then park", listing)
    stats = [p["stats"] for p in admin.get(API).json()["policies"]]
    assert [(s["would_retry"], s["parked"]) for s in stats] == [(1, 0), (0, 1)]
    inbox = text(client_for(operator).get("/deadletters/"))
    assert 'href="/deadletters/policies/"' in inbox
