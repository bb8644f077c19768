"""The schedules JSON API: schedule, list, read, cancel, send now; validation and roles."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from dashboard.models import DeadLetter, RequeueSchedule
from tests.support import schedules as seed

Status = DeadLetter.Status
pytestmark = [pytest.mark.django_db]


@pytest.fixture
def api(operator) -> Client:
    client = Client()
    client.force_login(operator)
    return client


def post(client: Client, url: str, body: object):
    return client.post(url, body, content_type="application/json")


def test_it_schedules_ids_after_a_delay_with_backoff_and_reads_it_back(api):
    made = seed.letters(3)
    answer = post(
        api,
        "/api/deadletters/schedules",
        {
            "ids": [m.pk for m in made],
            "delay": 600,
            "backoff": {"base": 60, "factor": 2, "cap": 600, "jitter": 0},
        },
    )
    assert answer.status_code == 201, answer.content
    data = answer.json()
    assert data["state"] == "active" and data["total"] == 3 and data["created_by"] == "otto"
    assert data["counts"] == {
        "waiting": 3,
        "sending": 0,
        "sent": 0,
        "came_back": 0,
        "failed": 0,
        "cancelled": 0,
    }
    assert data["parameters"]["backoff"] == {"base": 60, "factor": 2, "cap": 600, "jitter": 0}
    one = api.get(f"/api/deadletters/schedules/{data['id']}").json()
    assert one["first_due"] == data["first_due"] and one["last_due"] == data["last_due"]
    listed = api.get("/api/deadletters/schedules").json()
    assert [s["id"] for s in listed["schedules"]] == [data["id"]]
    assert listed["count"] == 1 and listed["pages"] == 1


def test_it_schedules_a_group_at_a_time(api):
    seed.letters(2, fingerprint="fp-api-group")
    at = (timezone.now() + timedelta(hours=2)).replace(microsecond=0)
    answer = post(
        api,
        "/api/deadletters/schedules",
        {"group": "fp-api-group", "at": at.isoformat(), "expect": 2},
    )
    assert answer.status_code == 201, answer.content
    assert answer.json()["description"]["filter"]["group"] == "fp-api-group"
    due = set(
        DeadLetter.objects.filter(fingerprint="fp-api-group").values_list("due_at", flat=True)
    )
    assert due == {at}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ids": [1], "delay": 60, "backoff": {"base": 10, "jitter": 2}}, "jitter"),
        ({"ids": [1], "delay": 60, "backoff": {"base": 0}}, "base"),
        ({"ids": [1], "delay": 60, "backoff": {"base": 100, "cap": 10}}, "backoff.cap"),
        ({"ids": [1], "delay": -5}, "delay"),
        ({"ids": [1], "at": "2030-01-01T10:00:00"}, "at"),
        ({"ids": [1], "at": "tomorrow"}, "at"),
        ({"delay": 60}, "ids, group or filter"),
        ({"ids": ["x"], "delay": 60}, "ids"),
        ({"ids": [1]}, "give a time or a delay"),
        ({"ids": [1], "delay": 5, "at": "2030-01-01T10:00:00Z"}, "not both"),
    ],
)
def test_it_answers_bad_input_with_a_400_naming_the_field(api, body, field):
    seed.letters(1)
    answer = post(api, "/api/deadletters/schedules", body)
    assert answer.status_code == 400, answer.content
    assert field in answer.json()["error"]
    assert not RequeueSchedule.objects.exists()


def test_it_cancels_and_sends_now_a_schedule_and_letters(api):
    made = seed.letters(4)
    sid = post(
        api, "/api/deadletters/schedules", {"ids": [m.pk for m in made], "delay": 3600}
    ).json()["id"]

    answer = post(api, "/api/deadletters/scheduled/send-now", {"ids": [made[0].pk]})
    assert answer.json() == {"changed": 1}
    due = DeadLetter.objects.get(pk=made[0].pk).due_at
    assert due is not None and due <= timezone.now()

    answer = post(api, "/api/deadletters/scheduled/cancel", {"ids": [made[1].pk]})
    assert answer.json() == {"changed": 1}
    assert DeadLetter.objects.get(pk=made[1].pk).status == Status.PENDING

    answer = post(api, f"/api/deadletters/schedules/{sid}/send-now", {})
    assert answer.status_code == 200
    assert answer.json()["counts"]["waiting"] == 3

    answer = post(api, f"/api/deadletters/schedules/{sid}/cancel", {})
    data = answer.json()
    assert data["state"] == "cancelled"
    assert data["counts"]["cancelled"] == 4 and data["counts"]["waiting"] == 0

    assert api.get("/api/deadletters/schedules/999999").status_code == 404
    assert post(api, "/api/deadletters/schedules/999999/cancel", {}).status_code == 404


def test_viewers_read_but_every_write_is_a_403(viewer, operator):
    made = seed.letters(1)
    client = Client()
    client.force_login(operator)
    sid = post(client, "/api/deadletters/schedules", {"ids": [made[0].pk], "delay": 60}).json()[
        "id"
    ]
    client.force_login(viewer)
    assert client.get(f"/api/deadletters/schedules/{sid}").status_code == 200
    for url, body in [
        ("/api/deadletters/schedules", {"ids": [made[0].pk], "delay": 60}),
        (f"/api/deadletters/schedules/{sid}/cancel", {}),
        (f"/api/deadletters/schedules/{sid}/send-now", {}),
        ("/api/deadletters/scheduled/cancel", {"ids": [made[0].pk]}),
        ("/api/deadletters/scheduled/send-now", {"ids": [made[0].pk]}),
    ]:
        assert post(client, url, body).status_code == 403, url
    assert DeadLetter.objects.get(pk=made[0].pk).status == Status.SCHEDULED
