"""The Django admin: dead letters searchable and filterable but changed only by audited actions;
jobs and audit entries read-only."""

from __future__ import annotations

import pytest

from dashboard.models import AuditEntry, Cluster, DeadLetter, Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def letters() -> list[DeadLetter]:
    cluster = Cluster.objects.create(slug="admin-test", kind="rabbitmq", name="Admin test")
    return [
        DeadLetter.objects.create(
            cluster=cluster,
            dlq="orders.dlq",
            capture_key=f"k{i}",
            message_id=f"msg-{i}",
            reason=reason,
            exception_class="ValueError" if i else "KeyError",
            body=b"{}",
        )
        for i, reason in enumerate(["rejected", "expired", "rejected"])
    ]


def test_it_searches_and_filters_dead_letters(client, admin_user_, letters):
    client.force_login(admin_user_)
    url = "/admin/dashboard/deadletter/"

    found = client.get(url, {"q": "msg-1"})
    filtered = client.get(url, {"reason": "rejected"})
    by_exception = client.get(url, {"q": "KeyError"})

    assert found.status_code == 200
    assert list(found.context["cl"].result_list) == [letters[1]]
    assert sorted(r.pk for r in filtered.context["cl"].result_list) == [
        letters[0].pk,
        letters[2].pk,
    ]
    assert list(by_exception.context["cl"].result_list) == [letters[0]]


def test_dead_letters_cannot_be_edited_or_deleted_by_hand(client, admin_user_, letters):
    client.force_login(admin_user_)
    url = f"/admin/dashboard/deadletter/{letters[0].pk}/change/"

    page = client.get(url)
    posted = client.post(url, {"status": "requeued"})
    deleted = client.post(f"/admin/dashboard/deadletter/{letters[0].pk}/delete/", {"post": "yes"})

    assert page.status_code == 200
    assert b'name="_save"' not in page.content  # a view page, not a form
    assert posted.status_code == 403
    assert deleted.status_code == 403
    assert DeadLetter.objects.get(pk=letters[0].pk).status == "pending"


def test_jobs_and_audit_entries_are_read_only(client, admin_user_):
    job = Job.objects.create(kind="deadletters.requeue")
    entry = AuditEntry.objects.create(action="deadletter.purge", outcome="ok")
    client.force_login(admin_user_)

    assert client.get("/admin/dashboard/job/add/").status_code == 403
    assert client.get("/admin/dashboard/auditentry/add/").status_code == 403
    assert client.post(f"/admin/dashboard/job/{job.pk}/delete/", {"post": "yes"}).status_code == 403
    assert (
        client.post(f"/admin/dashboard/auditentry/{entry.pk}/change/", {"action": "x"}).status_code
        == 403
    )
    assert client.get("/admin/dashboard/auditentry/").status_code == 200
    assert AuditEntry.objects.get(pk=entry.pk).action == "deadletter.purge"
    assert Job.objects.filter(pk=job.pk).exists()
