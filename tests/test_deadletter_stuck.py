"""A letter left "being requeued" by a requeue that died mid-way can be put back to pending."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from dashboard.models import AuditEntry, Cluster, DeadLetter, Job

pytestmark = pytest.mark.django_db


@pytest.fixture
def letter() -> DeadLetter:
    cluster = Cluster.objects.create(slug="stuck-test", kind="rabbitmq", name="Stuck test")
    return DeadLetter.objects.create(
        cluster=cluster,
        dlq="orders.dlq",
        capture_key="k1",
        message_id="m-1",
        body=b"{}",
        status=DeadLetter.Status.REQUEUING,
        claimed_at=timezone.now() - timedelta(minutes=10),
    )


def release(client, letter_id: int):
    return client.post(f"/api/deadletters/letters/{letter_id}/release")


def test_an_operator_releases_a_stuck_click_and_it_is_audited(client, operator, letter):
    client.force_login(operator)

    page = client.get(f"/deadletters/{letter.pk}/")
    answer = release(client, letter.pk)

    assert b"Mark pending again" in page.content
    assert answer.status_code == 200, answer.content
    letter.refresh_from_db()
    assert letter.status == "pending"
    assert "may already be at its origin" in letter.last_error
    [entry] = AuditEntry.objects.filter(action="deadletter.release_stuck")
    assert (entry.outcome, entry.username, entry.target) == (
        "ok",
        operator.username,
        f"deadletter:{letter.pk}",
    )


def test_a_fresh_claim_or_a_running_job_is_not_released(client, operator, letter):
    client.force_login(operator)
    DeadLetter.objects.filter(pk=letter.pk).update(claimed_at=timezone.now())
    fresh = release(client, letter.pk)

    job = Job.objects.create(kind="deadletters.requeue", state=Job.State.RUNNING)
    DeadLetter.objects.filter(pk=letter.pk).update(
        claimed_at=timezone.now() - timedelta(hours=1), claim_job=job.pk
    )
    held = release(client, letter.pk)
    Job.objects.filter(pk=job.pk).update(state=Job.State.FAILED)
    after_the_job = release(client, letter.pk)

    assert fresh.status_code == 400 and "not a stuck requeue" in json.loads(fresh.content)["error"]
    assert held.status_code == 400
    assert after_the_job.status_code == 200
    letter.refresh_from_db()
    assert letter.status == "pending"


def test_viewers_cannot_release(client, viewer, letter):
    client.force_login(viewer)

    assert release(client, letter.pk).status_code == 403
    assert b"Mark pending again" not in client.get(f"/deadletters/{letter.pk}/").content
    letter.refresh_from_db()
    assert letter.status == "requeuing"
