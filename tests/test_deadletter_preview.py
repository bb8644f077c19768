"""The dry run of a bulk requeue on real RabbitMQ and Kafka: targets, unroutable, redirects,
poison, the frozen selection, changes meanwhile, the confirmation and its roles."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied

from brokers.base import Secret
from dashboard.core.connections import close_all
from dashboard.deadletters import preview
from dashboard.deadletters.inbox import InboxFilter
from dashboard.jobs import control
from dashboard.models import Cluster, DeadLetter, Job, OriginRedirect
from tests.conftest import broken
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queued(monkeypatch) -> list[Job]:
    """Jobs handed to the worker (not run here: the job's own tests run them)."""
    sent: list[Job] = []
    monkeypatch.setattr(control, "enqueue", sent.append)
    return sent


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_config, rabbitmq_vhost):
    """Three real dead letters: two from routing key order.0.created, one from order.1.created."""
    use_clusters(rabbitmq_config)
    tag = uuid.uuid4().hex[:6]
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, [f"pv-a-{tag}", f"pv-b-{tag}"])
    await flow.dead_letter_again(made, [f"pv-c-{tag}"])
    yield made, await flow.rows_of(made.dlq)
    await close_all()


def targets(run: dict[str, Any]) -> dict[str, int]:
    return {t["where"]: t["letters"] for t in run["targets"]}


@pytest.mark.rabbitmq
async def test_a_selection_over_two_origins_shows_two_targets_with_counts(rabbit, operator):
    made, rows = rabbit
    token, record = await preview.do_dry_run(user=operator, ids=[r.pk for r in rows])
    run = record["result"]

    assert targets(run) == {
        f"{made.events} / order.0.created": 2,
        f"{made.events} / order.1.created": 1,
    }
    assert (run["total"], run["unroutable"], run["poison"], run["parked"]) == (3, 0, 0, 0)
    assert run["oldest"] <= run["newest"]
    assert all(not t["unroutable"] and not t["unknown"] for t in run["targets"])
    assert sorted(record["ids"]) == sorted(r.pk for r in rows)
    assert len(token) >= 16


@pytest.mark.rabbitmq
async def test_a_deleted_exchange_makes_its_letters_unroutable_with_the_reason(rabbit, operator):
    made, _rows = rabbit
    await sync_to_async(h.mgmt().delete)(f"/api/exchanges/{h.q(made.vhost)}/{h.q(made.events)}")

    _, record = await preview.do_dry_run(user=operator, spec=InboxFilter(dlq=made.dlq))
    run = record["result"]

    assert run["unroutable"] == 3
    reasons = {t["why"] for t in run["targets"]}
    assert reasons == {f"exchange {made.events!r} does not exist in vhost {made.vhost!r}"}


@pytest.mark.rabbitmq
async def test_a_broker_it_cannot_ask_leaves_its_targets_unknown_not_routable(
    rabbit, operator, use_clusters, rabbitmq_config
):
    made, _rows = rabbit
    await close_all()
    use_clusters(broken(rabbitmq_config, password=Secret("not-the-password")))

    _, record = await preview.do_dry_run(user=operator, spec=InboxFilter(dlq=made.dlq))
    run = record["result"]

    assert (run["total"], run["unroutable"], run["unchecked"]) == (3, 0, 3)
    assert all(t["unknown"] and t["why"].startswith("not checked: ") for t in run["targets"])


@pytest.mark.rabbitmq
async def test_a_redirect_shows_the_new_target_and_where_it_came_from(rabbit, operator):
    made, rows = rabbit
    cluster = await Cluster.objects.aget(slug="test-rabbitmq")
    await OriginRedirect.objects.acreate(
        cluster=cluster,
        vhost=made.vhost,
        match={"exchange": made.events, "routing_key": "order.1.created"},
        target={"exchange": "amq.direct", "routing_key": made.work},
    )

    _, record = await preview.do_dry_run(user=operator, ids=[r.pk for r in rows])
    by_where = {t["where"]: t for t in record["result"]["targets"]}

    moved = by_where[f"amq.direct / {made.work}"]
    assert (moved["letters"], moved["unroutable"]) == (1, False)
    assert moved["redirected_from"] == f"{made.events} / order.1.created"
    assert by_where[f"{made.events} / order.0.created"]["redirected_from"] == ""


@pytest.mark.rabbitmq
async def test_it_counts_poison_and_parked_letters_with_the_loop_guard_wording(rabbit, operator):
    made, rows = rabbit
    await DeadLetter.objects.filter(pk=rows[0].pk).aupdate(poison=True)
    await DeadLetter.objects.filter(pk=rows[1].pk).aupdate(parked=True)

    _, record = await preview.do_dry_run(user=operator, spec=InboxFilter(dlq=made.dlq))
    run = record["result"]

    assert (run["poison"], run["parked"]) == (1, 1)
    assert run["poison_warning"].startswith("Warning: 1 of them is poison (came back")


@pytest.mark.rabbitmq
async def test_a_letter_captured_after_the_dry_run_is_not_in_the_job(rabbit, operator, queued):
    made, rows = rabbit
    token, _ = await preview.do_dry_run(user=operator, spec=InboxFilter(dlq=made.dlq))
    await flow.dead_letter_again(made, [f"late-{uuid.uuid4().hex[:6]}"])

    job = await preview.do_confirm_now(token, user=operator, rate_limit="", request=None)

    assert sorted(job.selection) == sorted(r.pk for r in rows)
    assert len(await flow.rows_of(made.dlq)) == 4
    # The token was used up: a second confirmation finds nothing.
    with pytest.raises(preview.PreviewExpired):
        await preview.do_confirm_now(token, user=operator, rate_limit="", request=None)


@pytest.mark.rabbitmq
async def test_a_letter_requeued_meanwhile_refuses_and_offers_a_fresh_dry_run(
    async_client, rabbit, operator, queued
):
    _made, rows = rabbit
    await async_client.aforce_login(operator)
    answer = await async_client.post(
        "/deadletters/requeue-bulk",
        {"group": rows[0].fingerprint, "cluster": "test-rabbitmq", "upto": str(rows[-1].pk)},
    )
    assert answer.status_code == 303
    page = answer["Location"]
    assert page.startswith("/deadletters/preview/")
    shown = await async_client.get(page)
    assert shown.status_code == 200 and b"3</b> dead letters" in shown.content

    await DeadLetter.objects.filter(pk=rows[0].pk).aupdate(status="requeued")
    refused = await async_client.post(page + "requeue", {"idempotency_key": "k" * 20})

    assert refused.status_code == 303 and queued == []
    fresh = refused["Location"]
    assert fresh.startswith("/deadletters/preview/") and fresh != page
    again = await async_client.get(fresh)
    text = again.content.decode()
    assert "You confirmed 3 dead letters, but 2 of them can be requeued now" in text
    assert "fresh dry run" in text and "2</b> dead letters" in text

    started = await async_client.post(fresh + "requeue", {"idempotency_key": "m" * 20})
    [job] = queued
    assert started.status_code == 303 and started["Location"] == f"/jobs/{job.pk}/"
    assert sorted(job.selection) == sorted(r.pk for r in rows[1:])


@pytest.mark.rabbitmq
async def test_viewers_never_reach_it_and_an_expired_or_foreign_token_says_so(
    async_client, client, rabbit, operator, viewer, make_user
):
    _made, rows = rabbit
    with pytest.raises(PermissionDenied):
        await preview.do_dry_run(user=viewer, ids=[rows[0].pk])
    await async_client.aforce_login(viewer)
    denied = await async_client.post("/deadletters/requeue-bulk", {"scope": "selected"})
    assert denied.status_code == 403

    await async_client.aforce_login(operator)
    answer = await async_client.post(
        "/deadletters/requeue-bulk", {"scope": "selected", "ids": [str(rows[0].pk)]}
    )
    page = answer["Location"]
    await async_client.aforce_login(viewer)
    assert (await async_client.get(page)).status_code == 403

    # Another operator's session cannot read or confirm it.
    other = await sync_to_async(make_user)("olga", "operator")
    await sync_to_async(client.force_login)(other)
    foreign = await sync_to_async(client.get)(page)
    assert foreign.status_code == 410 and b"has expired" in foreign.content

    await async_client.aforce_login(operator)
    gone = await async_client.get("/deadletters/preview/" + "x" * 32 + "/")
    assert gone.status_code == 410
    assert b"Nothing was requeued: start again from the inbox." in gone.content


@pytest.mark.rabbitmq
async def test_a_schedule_with_backoff_spreads_the_letters_with_growing_gaps(
    async_client, rabbit, operator
):
    made, _rows = rabbit
    await async_client.aforce_login(operator)
    answer = await async_client.post(
        "/deadletters/requeue-bulk", {"dlq": made.dlq, "query": f"dlq={made.dlq}"}
    )
    page = answer["Location"]
    confirmed = await async_client.post(
        page + "schedule",
        {
            "idempotency_key": "s" * 20,
            "mode": "spread",
            "delay_minutes": "60",
            "base": "10",
            "factor": "3",
            "cap": "600",
            "jitter": "0",
        },
    )
    assert confirmed.status_code == 303
    letters = [r async for r in DeadLetter.objects.filter(dlq=made.dlq).order_by("due_at")]
    assert {r.status for r in letters} == {"scheduled"}
    due = [r.due_at for r in letters if r.due_at is not None]
    gaps = [b - a for a, b in itertools.pairwise(due)]
    assert gaps == [timedelta(seconds=10), timedelta(seconds=30)]
    assert letters[0].schedule_id is not None
    assert len({r.schedule_id for r in letters}) == 1
    shown = (await async_client.get(f"/deadletters/schedules/{letters[0].schedule_id}/")).content
    assert b"chosen by id" not in shown, "the dry run's filter stays the schedule's description"
    assert f"3 letters matching dlq={made.dlq}".encode() in shown
    assert "first gap 10 s, \u00d73 each step, at most 10 min".encode() in shown


@pytest.mark.rabbitmq
async def test_the_api_makes_a_dry_run_and_confirms_it(async_client, rabbit, operator, queued):
    made, rows = rabbit
    await async_client.aforce_login(operator)
    made_run = await async_client.post(
        "/api/deadletters/preview",
        {"filter": {"dlq": made.dlq}},
        content_type="application/json",
    )
    assert made_run.status_code == 200, made_run.content
    body = made_run.json()
    assert body["total"] == 3 and len(body["targets"]) == 2
    assert body["url"] == f"/deadletters/preview/{body['token']}/"

    # One letter is discarded meanwhile: refused, with a fresh dry run's token.
    await DeadLetter.objects.filter(pk=rows[0].pk).aupdate(status="discarded")
    changed = await async_client.post(
        f"/api/deadletters/preview/{body['token']}/requeue", {}, content_type="application/json"
    )
    assert changed.status_code == 409 and changed.json()["code"] == "changed"
    assert "2 of them can be requeued now" in changed.json()["error"] and queued == []
    body = {**body, "token": changed.json()["token"]}

    started = await async_client.post(
        f"/api/deadletters/preview/{body['token']}/requeue",
        {"rate_limit": 50},
        content_type="application/json",
    )
    assert started.status_code == 202, started.content
    [job] = queued
    assert started.json()["job"]["id"] == job.pk and job.rate_limit == 50
    assert sorted(job.selection) == sorted(r.pk for r in rows[1:])

    expired = await async_client.post(
        f"/api/deadletters/preview/{body['token']}/schedule",
        {"delay": 60},
        content_type="application/json",
    )
    assert expired.status_code == 410


@pytest.fixture
async def kafka_letters(use_clusters, kafka_config):
    use_clusters(kafka_config)
    origin = h.kafka_name("")
    dlq = f"{origin}-dlq"
    await sync_to_async(h.create_topic)(origin)
    await sync_to_async(h.create_topic)(dlq)
    rows = await flow.kafka_dead_letters(origin, dlq, [b"k1", b"k2"])
    yield origin, dlq, rows
    with contextlib.suppress(Exception):
        await sync_to_async(h.delete_topics)(origin, dlq)
    await close_all()


@pytest.mark.kafka
async def test_a_deleted_topic_makes_its_letters_unroutable(kafka_letters, operator):
    origin, dlq, _rows = kafka_letters
    _, before = await preview.do_dry_run(user=operator, spec=InboxFilter(dlq=dlq))
    assert targets(before["result"]) == {origin: 2}
    assert before["result"]["unroutable"] == 0

    await sync_to_async(h.delete_topics)(origin)

    async def gone() -> bool:
        _, record = await preview.do_dry_run(user=operator, spec=InboxFilter(dlq=dlq))
        return bool(record["result"]["unroutable"] == 2)

    await h.async_wait_for(gone, 20, what="the deleted topic seen as gone")
    _, after = await preview.do_dry_run(user=operator, spec=InboxFilter(dlq=dlq))
    assert [t["why"] for t in after["result"]["targets"]] == [f"topic {origin!r} does not exist"]
