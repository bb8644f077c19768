"""The schedules pages and the letter page's schedule parts: what they show, who may act."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from dashboard.core import once
from dashboard.models import AuditEntry, DeadLetter, RequeueSchedule
from tests.support import schedules as seed

Status = DeadLetter.Status
pytestmark = [pytest.mark.django_db]


def login(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def text(answer) -> str:
    assert answer.status_code == 200
    return html.unescape(answer.content.decode())


def plain(page: str) -> str:
    """The page's text without its tags."""
    return re.sub(r"<[^>]+>", "", page)


def later(client: Client, letter: DeadLetter, **fields: str):
    data = {once.FIELD: once.new_key(), **fields}
    return client.post(reverse("deadletters-requeue-later", args=[letter.pk]), data)


def test_an_operator_requeues_a_letter_later_and_sees_it_scheduled(operator):
    client = login(operator)
    letter = seed.letters(1)[0]
    page = text(client.get(reverse("deadletters-detail", args=[letter.pk])))
    assert "Requeue later" in page
    before = timezone.now()
    answer = later(client, letter, when="delay", amount="10", unit="minutes")
    assert answer.status_code == 302
    assert answer["Location"] == reverse("deadletters-detail", args=[letter.pk])
    letter.refresh_from_db()
    assert letter.status == Status.SCHEDULED and letter.due_at is not None
    assert before + timedelta(minutes=10) <= letter.due_at <= timezone.now() + timedelta(minutes=10)
    page = text(client.get(answer["Location"]))
    assert f"is scheduled (schedule #{letter.schedule_id})" in page
    due = letter.due_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert f"Scheduled: due {due} (schedule #{letter.schedule_id})" in plain(page)
    assert 'id="letter-send-now"' in page and 'id="letter-schedule-cancel"' in page
    # No longer pending: no "Requeue later" form.
    assert 'id="requeue-later-form"' not in page


def test_it_requeues_at_a_utc_time_from_the_form(operator):
    client = login(operator)
    letter = seed.letters(1)[0]
    at = (timezone.now() + timedelta(days=1)).replace(second=0, microsecond=0)
    later(client, letter, when="at", at=at.strftime("%Y-%m-%dT%H:%M:%SZ"))
    letter.refresh_from_db()
    assert letter.due_at == at


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"when": "delay", "amount": "ten", "unit": "minutes"}, "amount"),
        ({"when": "delay", "amount": "5", "unit": "weeks"}, "unit"),
        ({"when": "at", "at": ""}, "at: give a date and time"),
        ({"when": "at", "at": "2026-99-01T00:00Z"}, "at must be"),
        ({"when": "soon"}, "when"),
    ],
)
def test_bad_requeue_later_fields_are_named_and_change_nothing(operator, fields, message):
    client = login(operator)
    letter = seed.letters(1)[0]
    answer = later(client, letter, **fields)
    page = text(client.get(answer["Location"]))
    assert message in page
    letter.refresh_from_db()
    assert letter.status == Status.PENDING


def test_a_double_click_schedules_once(operator):
    client = login(operator)
    letter = seed.letters(1)[0]
    data = {once.FIELD: once.new_key(), "when": "delay", "amount": "5", "unit": "minutes"}
    url = reverse("deadletters-requeue-later", args=[letter.pk])
    assert client.post(url, data).status_code == 302
    assert client.post(url, data).status_code == 302
    assert RequeueSchedule.objects.count() == 1
    assert AuditEntry.objects.filter(action="deadletters.schedule").count() == 1


def test_send_now_and_cancel_from_the_letter_page(operator):
    client = login(operator)
    first, second = seed.letters(2)
    for letter in (first, second):
        later(client, letter, when="delay", amount="2", unit="hours")
    client.post(
        reverse("deadletters-letter-schedule-send-now", args=[first.pk]),
        {once.FIELD: once.new_key()},
    )
    first.refresh_from_db()
    assert first.status == Status.SCHEDULED
    assert first.due_at is not None and first.due_at <= timezone.now()
    answer = client.post(
        reverse("deadletters-letter-schedule-cancel", args=[second.pk]),
        {once.FIELD: once.new_key()},
    )
    assert "is no longer scheduled" in text(client.get(answer["Location"]))
    second.refresh_from_db()
    assert (second.status, second.due_at, second.schedule_id) == (Status.PENDING, None, None)


def test_a_letter_scheduled_without_a_schedule_still_shows_its_due_time(operator):
    client = login(operator)
    letter = seed.letters(1)[0]
    due = timezone.now() + timedelta(hours=1)
    DeadLetter.objects.filter(pk=letter.pk).update(status=Status.SCHEDULED, due_at=due)
    page = text(client.get(reverse("deadletters-detail", args=[letter.pk])))
    assert f"Scheduled: due {due.strftime('%Y-%m-%d %H:%M:%S UTC')}\n" in plain(page)
    assert 'id="letter-send-now"' in page


def test_a_letter_a_schedule_sent_says_so(operator):
    client = login(operator)
    letter = seed.letters(1)[0]
    later(client, letter, when="delay", amount="1", unit="minutes")
    letter.refresh_from_db()
    DeadLetter.objects.filter(pk=letter.pk).update(status=Status.REQUEUED, due_at=None)
    page = text(client.get(reverse("deadletters-detail", args=[letter.pk])))
    assert f"Requeued by schedule #{letter.schedule_id}." in plain(page)


def test_the_schedules_pages_show_counts_and_operator_buttons(operator):
    client = login(operator)
    made = seed.letters(3)
    for letter in made:
        later(client, letter, when="delay", amount="30", unit="minutes")
    first = RequeueSchedule.objects.order_by("pk").first()
    assert first is not None
    DeadLetter.objects.filter(pk=made[0].pk).update(status=Status.FAILED_AGAIN)
    page = text(client.get(reverse("deadletters-schedules")))
    assert page.count('data-schedule="') == 3
    assert "1 letter chosen by id" in page
    detail = text(client.get(reverse("deadletters-schedule", args=[first.pk])))
    assert 'data-count="sent">1<' in detail and 'data-count="came_back">' in detail
    assert f'data-letter="{made[0].pk}"' in detail
    # Nothing waits in the first schedule: no buttons.
    assert 'id="schedule-cancel"' not in detail
    last = RequeueSchedule.objects.order_by("pk").last()
    assert last is not None
    detail = text(client.get(reverse("deadletters-schedule", args=[last.pk])))
    assert 'id="schedule-send-now"' in detail and 'id="schedule-cancel"' in detail
    answer = client.post(
        reverse("deadletters-schedule-cancel", args=[last.pk]), {once.FIELD: once.new_key()}
    )
    assert "1 dead letter taken out" in text(client.get(answer["Location"]))
    last.refresh_from_db()
    assert last.state == RequeueSchedule.State.CANCELLED
    assert client.get(reverse("deadletters-schedule", args=[999999])).status_code == 404
    assert "Scheduled requeues" in text(client.get(reverse("deadletters-inbox")))


def test_viewers_read_the_pages_without_buttons_and_their_posts_are_403(viewer, operator):
    letter = seed.letters(1)[0]
    later(login(operator), letter, when="delay", amount="30", unit="minutes")
    letter.refresh_from_db()
    client = login(viewer)
    detail = text(client.get(reverse("deadletters-schedule", args=[letter.schedule_id])))
    assert "Send all now" not in detail and "Cancel the rest" not in detail
    page = text(client.get(reverse("deadletters-detail", args=[letter.pk])))
    assert "Scheduled: due" in page and 'id="letter-send-now"' not in page
    for name, arg in [
        ("deadletters-schedule-cancel", letter.schedule_id),
        ("deadletters-schedule-send-now", letter.schedule_id),
        ("deadletters-letter-schedule-cancel", letter.pk),
        ("deadletters-letter-schedule-send-now", letter.pk),
        ("deadletters-requeue-later", letter.pk),
    ]:
        answer = client.post(
            reverse(name, args=[arg]),
            {once.FIELD: once.new_key(), "when": "delay", "amount": "1", "unit": "minutes"},
        )
        assert answer.status_code == 403, name
    letter.refresh_from_db()
    assert letter.status == Status.SCHEDULED
