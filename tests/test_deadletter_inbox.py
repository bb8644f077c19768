"""The dead-letter inbox pages, their JSON API and the Django admin actions.

Rows come from really dead-lettered RabbitMQ messages captured by the real
capture engine (tests/support/deadletter_flow.py).
"""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from datetime import timezone as dt_timezone

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from dashboard.core.connections import close_all
from dashboard.models import AuditEntry, DeadLetter
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h

pytestmark = [pytest.mark.rabbitmq, pytest.mark.django_db(transaction=True)]


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config, rabbitmq_vhost):
    use_clusters(rabbitmq_config)
    ids = [f"inb-{i}-{uuid.uuid4().hex[:6]}" for i in range(4)]
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, ids)
    yield made, await flow.rows_of(made.dlq)
    await close_all()


@sync_to_async
def status_of(pk: int) -> str:
    return str(DeadLetter.objects.get(pk=pk).status)


async def test_the_inbox_groups_by_failure_with_counts(async_client, viewer, rabbit):
    made, rows = rabbit
    await async_client.aforce_login(viewer)

    data = (await async_client.get("/api/deadletters/groups", {"dlq": made.dlq})).json()

    [group] = data["items"]
    assert (group["count"], group["pending"], group["failed_again"]) == (4, 4, 0)
    assert group["origin"] == f"queue {made.work}"
    assert group["reason"] == "rejected"
    page = await async_client.get("/deadletters/", {"dlq": made.dlq})
    assert page.status_code == 200
    assert made.work.encode() in page.content
    rows_page = await async_client.get("/deadletters/", {"dlq": made.dlq, "view": "rows"})
    assert rows[0].message_id.encode() in rows_page.content
    assert b'name="ids"' not in rows_page.content  # viewers get no selection or buttons
    assert b"Discard selected" not in rows_page.content
    assert b'action="/deadletters/discard' not in rows_page.content


async def test_the_filters_narrow_the_letters(async_client, viewer, rabbit):
    made, rows = rabbit
    await async_client.aforce_login(viewer)

    async def letters(**params: str) -> list[int]:
        answer = await async_client.get("/api/deadletters/letters", {"dlq": made.dlq, **params})
        return [item["id"] for item in answer.json()["items"]]

    assert len(await letters()) == 4
    assert await letters(text=rows[2].message_id) == [rows[2].pk]
    assert await letters(status="requeued") == []
    assert len(await letters(reason="reject", origin=made.work)) == 4
    assert await letters(cluster="nope") == []
    bad = await async_client.get("/api/deadletters/letters", {"since": "yesterday"})
    assert bad.status_code == 400


def timezone_of(hours: int, minutes: int) -> dt_timezone:
    return dt_timezone(timedelta(hours=hours, minutes=minutes))


async def test_the_time_range_narrows_by_capture_time(async_client, viewer, rabbit):
    made, rows = rabbit
    now = timezone.now()
    await sync_to_async(DeadLetter.objects.filter(pk=rows[0].pk).update)(
        captured_at=now - timedelta(days=2)
    )
    await async_client.aforce_login(viewer)

    async def letters(**params: str) -> list[int]:
        answer = await async_client.get("/api/deadletters/letters", {"dlq": made.dlq, **params})
        assert answer.status_code == 200, answer.content
        return sorted(item["id"] for item in answer.json()["items"])

    day_ago = (now - timedelta(days=1)).isoformat()
    assert await letters(since=day_ago) == sorted(r.pk for r in rows[1:])
    assert await letters(until=day_ago) == [rows[0].pk]
    assert await letters(since=(now - timedelta(days=3)).isoformat(), until=day_ago) == [rows[0].pk]
    # Python takes offsets up to 23:59, PostgreSQL only up to 15:59: the moment reaches the
    # database in UTC (the fuzzer found a 500 on -19:37).
    far = (now - timedelta(days=1)).astimezone(timezone_of(hours=-19, minutes=-37))
    assert await letters(since=far.isoformat()) == sorted(r.pk for r in rows[1:])
    assert await letters(until="3610-08-23T18:09:39-19:37") == sorted(r.pk for r in rows)


async def test_purge_deletes_now_needs_an_admin_and_is_audited(
    async_client, operator, admin_user_, rabbit
):
    made, rows = rabbit
    url = "/api/deadletters/purge"
    await async_client.aforce_login(operator)
    refused = await async_client.post(
        url, json.dumps({"ids": [rows[0].pk]}), content_type="application/json"
    )
    await async_client.aforce_login(admin_user_)
    one = await async_client.post(
        url, json.dumps({"ids": [rows[0].pk]}), content_type="application/json"
    )
    await sync_to_async(DeadLetter.objects.filter(pk=rows[1].pk).update)(status="requeuing")
    rest = await async_client.post(
        url, json.dumps({"filter": {"dlq": made.dlq}}), content_type="application/json"
    )

    assert refused.status_code == 403
    assert one.json() == {"purged": 1}
    # The row being requeued is left to its requeue; the other two are gone.
    assert rest.json() == {"purged": 2}
    left = await sync_to_async(
        lambda: list(DeadLetter.objects.filter(dlq=made.dlq).values_list("pk", flat=True))
    )()
    assert left == [rows[1].pk]
    entries = await sync_to_async(
        lambda: list(
            AuditEntry.objects.filter(action="deadletter.purge")
            .order_by("pk")
            .values_list("outcome", "parameters")
        )
    )()
    assert [(o, p.get("purged")) for o, p in entries] == [
        ("refused", None),
        ("ok", 1),
        ("ok", 2),
    ]


async def test_the_inbox_page_purges_the_selection_for_admins(async_client, admin_user_, rabbit):
    made, rows = rabbit
    await async_client.aforce_login(admin_user_)
    page = await async_client.get("/deadletters/", {"dlq": made.dlq, "view": "rows"})
    assert b"Purge selected (admin)" in page.content

    done = await async_client.post("/deadletters/purge", {"ids": [rows[2].pk, rows[3].pk]})

    assert done.status_code == 302
    assert await sync_to_async(DeadLetter.objects.filter(dlq=made.dlq).count)() == 2


async def test_the_detail_page_shows_the_decoded_letter_and_its_audit(
    async_client, operator, rabbit
):
    made, rows = rabbit
    await async_client.aforce_login(operator)
    letter = rows[0]

    sent = await async_client.post(f"/deadletters/{letter.pk}/requeue")
    assert sent.status_code == 302
    page = await async_client.get(f"/deadletters/{letter.pk}/")

    text = page.content.decode()
    assert "&quot;order&quot;: 0" in text or '"order": 0' in text
    assert letter.message_id in text
    assert "x-tenant" in text and "acme" in text
    assert "Dead-letter requeue" in text and "deadletter.requeue" in text  # label, code on hover
    assert "requeued" in text
    [message] = await flow.take_all(made.vhost, made.work)
    assert message.message_id == letter.message_id
    detail = (await async_client.get(f"/api/deadletters/letters/{letter.pk}")).json()
    assert detail["status"] == "requeued"
    assert [e["action"] for e in detail["audit"]] == ["deadletter.requeue"]
    assert detail["x_death"][0]["queue"] == made.work


async def test_it_refuses_requeue_for_viewers_in_the_view_and_the_api(async_client, viewer, rabbit):
    made, rows = rabbit
    await async_client.aforce_login(viewer)

    page = await async_client.post(f"/deadletters/{rows[0].pk}/requeue")
    api = await async_client.post(
        f"/api/deadletters/letters/{rows[0].pk}/requeue", {}, content_type="application/json"
    )
    discard = await async_client.post("/deadletters/discard", {"ids": [rows[0].pk]})

    assert (page.status_code, api.status_code, discard.status_code) == (403, 403, 403)
    assert await status_of(rows[0].pk) == "pending"
    assert await h.depth(made.vhost, made.work) == 0
    refused = await sync_to_async(AuditEntry.objects.filter(outcome="refused").count)()
    assert refused == 3


async def test_the_api_answers_a_second_requeue_with_409_and_sends_once(
    async_client, operator, rabbit
):
    made, rows = rabbit
    await async_client.aforce_login(operator)
    url = f"/api/deadletters/letters/{rows[1].pk}/requeue"

    first = await async_client.post(url, {}, content_type="application/json")
    second = await async_client.post(url, {}, content_type="application/json")

    assert first.status_code == 200 and first.json()["status"] == "requeued"
    assert second.status_code == 409
    assert "already requeued" in second.json()["error"]
    await flow.take_all(made.vhost, made.work, expect=1)
    assert await h.depth(made.vhost, made.work) == 0


async def test_the_api_refuses_an_edit_that_is_not_json(async_client, operator, rabbit):
    _made, rows = rabbit
    await async_client.aforce_login(operator)

    answer = await async_client.post(
        f"/api/deadletters/letters/{rows[0].pk}/requeue",
        json.dumps({"body": "{broken"}),
        content_type="application/json",
    )

    assert answer.status_code == 400
    assert "not valid JSON" in answer.json()["error"]
    assert await status_of(rows[0].pk) == "pending"


async def test_an_unroutable_target_answers_422_and_keeps_the_letter(
    async_client, operator, rabbit
):
    made, rows = rabbit
    await async_client.aforce_login(operator)

    answer = await async_client.post(
        f"/api/deadletters/letters/{rows[0].pk}/requeue",
        json.dumps({"exchange": made.events, "routing_key": "no.binding.here"}),
        content_type="application/json",
    )

    assert answer.status_code == 422
    assert answer.json()["error"].startswith("unroutable: ")
    assert await status_of(rows[0].pk) == "requeue_failed"
    listed = await async_client.get("/api/deadletters/letters", {"dlq": made.dlq})
    assert rows[0].pk in [i["id"] for i in listed.json()["items"]]


async def test_discard_all_needs_an_admin(async_client, operator, admin_user_, rabbit):
    made, _rows = rabbit
    await async_client.aforce_login(operator)
    url = "/api/deadletters/discard-all"
    body = json.dumps({"dlq": made.dlq})

    refused = await async_client.post(url, body, content_type="application/json")
    await async_client.aforce_login(admin_user_)
    done = await async_client.post(url, body, content_type="application/json")

    assert refused.status_code == 403
    assert done.json() == {"discarded": 4}


def test_the_admin_actions_requeue_and_discard_selected(client, admin_user_, rabbit):
    _made, rows = rabbit
    client.force_login(admin_user_)
    url = "/admin/dashboard/deadletter/"

    client.post(url, {"action": "requeue_selected", "_selected_action": [rows[0].pk]})
    client.post(url, {"action": "discard_selected", "_selected_action": [rows[1].pk]})

    assert DeadLetter.objects.get(pk=rows[0].pk).status == "requeued"
    assert DeadLetter.objects.get(pk=rows[1].pk).status == "discarded"
    actions = set(AuditEntry.objects.values_list("action", flat=True))
    assert {"deadletter.requeue", "deadletter.discard"} <= actions
