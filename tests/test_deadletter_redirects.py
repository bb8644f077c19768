"""Redirects: requeues to a renamed origin go to its new target, against the real brokers.

RabbitMQ letters are really dead-lettered from ``<base>-events``; the "new"
origin is a second exchange with its own queue. Kafka letters are Spring-style
DLT records whose origin topic is replaced by a new one.
"""

from __future__ import annotations

import asyncio
import uuid

import aio_pika
import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied

from brokers.base.deadletters import RequeueTarget, StoredLetter
from dashboard.core.connections import close_all
from dashboard.deadletters import redirects, requeue_job
from dashboard.deadletters import requeue as service
from dashboard.jobs import control, runner
from dashboard.models import AuditEntry, Job, OriginRedirect
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h

pytestmark = [pytest.mark.django_db(transaction=True)]


async def new_origin(vhost: str, base: str) -> tuple[str, str]:
    """A topic exchange ``<base>-v2`` bound (``order.#``) to a queue ``<base>-v2-work``."""
    exchange, queue = f"{base}-v2", f"{base}-v2-work"
    connection = await h.amqp(vhost)
    try:
        channel = await connection.channel()
        ex = await channel.declare_exchange(exchange, aio_pika.ExchangeType.TOPIC)
        declared = await channel.declare_queue(queue)
        await declared.bind(ex, "order.#")
    finally:
        await connection.close()
    return exchange, queue


@sync_to_async
def entries(action: str) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=action).order_by("time"))


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_vhost):
    ids = [f"rd-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, ids, prefix="redir")
    exchange, queue = await new_origin(rabbitmq_vhost, made.events)
    yield made, await flow.rows_of(made.dlq), exchange, queue
    await close_all()


@pytest.fixture
def kafka_topics(use_clusters, settings):
    origin = h.create_topic(h.kafka_name("-orders"))
    moved = h.create_topic(h.kafka_name("-orders-v2"))
    dlq = h.create_topic(h.kafka_name("-dlq"))
    settings.MQB_KAFKA_CAPTURE_GROUP = f"{dlq}-group-{{slug}}"
    yield origin, moved, dlq
    h.delete_group(settings.MQB_KAFKA_CAPTURE_GROUP.format(slug="test-kafka"))
    h.delete_topics(origin, moved, dlq)


async def add(
    admin, slug: str, match: dict[str, str], target: dict[str, str], **more
) -> redirects.RedirectRow:
    return await redirects.do_create_redirect(
        user=admin, slug=slug, vhost=more.pop("vhost", ""), match=match, target=target, **more
    )


@pytest.mark.rabbitmq
async def test_a_requeue_by_hand_follows_the_redirect_and_keeps_its_routing_key(
    rabbit, operator, admin_user_
):
    made, rows, exchange, queue = rabbit
    row = await add(
        admin_user_,
        "test-rabbitmq",
        {"exchange": made.events},
        {"exchange": exchange},
        note="events moved to v2",
    )
    letter = rows[1]

    result = await service.do_requeue_dead_letter(letter.pk, user=operator)

    assert result.sent
    [message] = await flow.take_all(made.vhost, queue)
    assert message.message_id == letter.message_id
    assert message.routing_key == letter.origin_routing_key == "order.1.created"
    assert await h.depth(made.vhost, made.work) == 0
    [entry] = await entries("deadletter.requeue")
    assert entry.parameters["redirect"] == row.id
    assert entry.parameters["exchange"] == exchange
    route = await sync_to_async(redirects.goes_to)("test-rabbitmq", service.stored_letter(letter))
    assert (route.redirect, route.note) == (row.id, "events moved to v2")
    assert route.origin == f"{made.events} / order.1.created"
    assert route.where == f"{exchange} / order.1.created"


@pytest.mark.rabbitmq
async def test_a_bulk_job_follows_the_redirect(rabbit, operator, admin_user_, monkeypatch):
    made, rows, exchange, queue = rabbit
    await add(admin_user_, "test-rabbitmq", {"exchange": made.events}, {"exchange": exchange})
    queued: list[Job] = []
    monkeypatch.setattr(control, "enqueue", queued.append)

    job = await requeue_job.do_start_bulk_requeue(user=operator, ids=[r.pk for r in rows])
    await asyncio.to_thread(runner.run_job, job.pk, job.task_id)
    finished = await sync_to_async(control.get_job)(job.pk)

    assert (finished.state, finished.done, finished.failed) == ("done", 3, 0)
    got = await flow.take_all(made.vhost, queue, expect=3)
    assert sorted(str(m.message_id) for m in got) == sorted(r.message_id for r in rows)
    assert await h.depth(made.vhost, made.work) == 0


@pytest.mark.rabbitmq
async def test_a_disabled_redirect_and_a_typed_target_are_not_redirected(
    rabbit, operator, admin_user_
):
    made, rows, exchange, queue = rabbit
    row = await add(admin_user_, "test-rabbitmq", {"exchange": made.events}, {"exchange": exchange})
    await redirects.do_update_redirect(row.id, user=admin_user_, enabled=False)

    assert (await service.do_requeue_dead_letter(rows[0].pk, user=operator)).sent
    [back] = await flow.take_all(made.vhost, made.work)
    assert back.message_id == rows[0].message_id

    await redirects.do_update_redirect(row.id, user=admin_user_, enabled=True)
    typed = RequeueTarget(exchange=made.events, routing_key="order.9.created")
    assert (await service.do_requeue_dead_letter(rows[1].pk, user=operator, target=typed)).sent
    [typed_back] = await flow.take_all(made.vhost, made.work)
    assert typed_back.message_id == rows[1].message_id
    assert await h.depth(made.vhost, queue) == 0


@pytest.mark.rabbitmq
async def test_a_vhost_scoped_redirect_leaves_other_vhosts_alone(rabbit, operator, admin_user_):
    made, rows, exchange, queue = rabbit
    await add(
        admin_user_,
        "test-rabbitmq",
        {"exchange": made.events},
        {"exchange": exchange},
        vhost=f"{made.vhost}-elsewhere",
    )

    assert (await service.do_requeue_dead_letter(rows[2].pk, user=operator)).sent

    [back] = await flow.take_all(made.vhost, made.work)
    assert back.message_id == rows[2].message_id
    assert await h.depth(made.vhost, queue) == 0
    stored = service.stored_letter(rows[2])
    assert (await sync_to_async(redirects.goes_to)("test-rabbitmq", stored)).redirect is None
    here = await add(
        admin_user_,
        "test-rabbitmq",
        {"exchange": made.events},
        {"exchange": exchange},
        vhost=made.vhost,
    )
    assert (await sync_to_async(redirects.goes_to)("test-rabbitmq", stored)).redirect == here.id


@pytest.mark.kafka
async def test_a_kafka_requeue_goes_to_the_new_topic(kafka_topics, operator, admin_user_):
    origin, moved, dlq = kafka_topics
    [letter] = await flow.kafka_dead_letters(origin, dlq, [b"key-7"])
    await add(admin_user_, "test-kafka", {"topic": origin}, {"topic": moved})

    assert (await service.do_requeue_dead_letter(letter.pk, user=operator)).sent

    [(key, value, headers)] = await sync_to_async(flow.read_topic)(moved, 1)
    assert (key, value) == (b"key-7", bytes(letter.body))
    assert ("x-mqboard-requeue-count", b"1") in headers


# -- roles, audit, validation ------------------------------------------------------------


@pytest.mark.rabbitmq
async def test_only_admins_change_redirects_and_every_change_is_audited(
    use_clusters, viewer, operator, admin_user_
):
    match, target = {"exchange": "orders"}, {"exchange": "orders-v2"}
    for user in (viewer, operator):
        with pytest.raises(PermissionDenied):
            await add(user, "test-rabbitmq", match, target)
    assert await sync_to_async(OriginRedirect.objects.count)() == 0

    row = await add(admin_user_, "test-rabbitmq", match, target, vhost="/", note="moved")
    with pytest.raises(PermissionDenied):
        await redirects.do_update_redirect(row.id, user=operator, enabled=False)
    with pytest.raises(PermissionDenied):
        await redirects.do_delete_redirect(row.id, user=operator)
    updated = await redirects.do_update_redirect(row.id, user=admin_user_, note="renamed")
    await redirects.do_delete_redirect(row.id, user=admin_user_)

    assert updated.note == "renamed" and updated.enabled
    assert await sync_to_async(OriginRedirect.objects.count)() == 0
    *refused, created = await entries("deadletters.redirect_create")
    assert [e.username for e in refused] == ["vera", "otto"]
    assert {e.outcome for e in refused} == {"refused"}
    assert created.outcome == "ok" and created.username == "ada"
    assert created.parameters["match"] == {"exchange": "orders", "routing_key": ""}
    assert created.parameters["vhost"] == "/"
    outcomes = [e.outcome for e in await entries("deadletters.redirect_update")]
    assert outcomes == ["refused", "ok"]
    assert [e.outcome for e in await entries("deadletters.redirect_delete")] == ["refused", "ok"]


@pytest.mark.parametrize(
    ("slug", "match", "target", "field"),
    [
        ("test-rabbitmq", {}, {"exchange": "x"}, "from.exchange"),
        ("test-rabbitmq", {"exchange": "", "routing_key": ""}, {"exchange": "x"}, "from.exchange"),
        ("test-rabbitmq", {"exchange": "o"}, {"exchange": "x" * 128}, "to.exchange"),
        ("test-rabbitmq", {"routing_key": "k" * 256}, {"exchange": "x"}, "from.routing_key"),
        ("test-rabbitmq", {"exchange": "o\ud800"}, {"exchange": "x"}, "from.exchange"),
        ("test-rabbitmq", {"topic": "o"}, {"exchange": "x"}, "from.topic"),
        ("test-kafka", {"topic": "bad topic"}, {"topic": "ok"}, "from.topic"),
        ("test-kafka", {"topic": "ok"}, {"topic": "."}, "to.topic"),
        ("test-kafka", {"topic": "ok"}, {}, "to.topic"),
        ("no-such-cluster", {"topic": "ok"}, {"topic": "ok"}, "cluster"),
    ],
)
async def test_bad_names_are_refused_naming_their_field(
    use_clusters, admin_user_, slug, match, target, field
):
    with pytest.raises(redirects.InvalidRedirect) as refused:
        await add(admin_user_, slug, match, target)

    assert refused.value.field == field
    assert await sync_to_async(OriginRedirect.objects.count)() == 0


async def test_a_bad_vhost_and_note_are_refused(use_clusters, admin_user_):
    with pytest.raises(redirects.InvalidRedirect) as vhost:
        await add(
            admin_user_, "test-rabbitmq", {"exchange": "o"}, {"exchange": "n"}, vhost="v" * 256
        )
    with pytest.raises(redirects.InvalidRedirect) as note:
        await add(admin_user_, "test-rabbitmq", {"exchange": "o"}, {"exchange": "n"}, note="a\x00b")

    assert (vhost.value.field, note.value.field) == ("vhost", "note")


async def test_a_kafka_redirect_keeps_no_vhost(use_clusters, admin_user_):
    row = await add(admin_user_, "test-kafka", {"topic": "a"}, {"topic": "b"}, vhost="ignored")

    assert row.vhost == "" and not row.has_vhosts


def letter(
    origin_exchange: str = "", origin_routing_key: str = "", origin_topic: str = ""
) -> StoredLetter:
    """A stored letter with this origin (in vhost "/"), for resolution without a broker."""
    return StoredLetter(
        vhost="/",
        origin_exchange=origin_exchange,
        origin_routing_key=origin_routing_key,
        origin_topic=origin_topic,
        origin_queue="",
        origin_partition=None,
        is_task=False,
        key=None,
        headers={},
        properties={},
        body=b"{}",
    )


async def test_the_first_matching_redirect_wins_and_empty_fields_match_anything(
    use_clusters, admin_user_
):
    first = await add(admin_user_, "test-rabbitmq", {"routing_key": "order.1"}, {"exchange": "a"})
    await add(admin_user_, "test-rabbitmq", {"exchange": "orders"}, {"exchange": "b"})
    goes_to = sync_to_async(redirects.goes_to)

    both = await goes_to(
        "test-rabbitmq", letter(origin_exchange="orders", origin_routing_key="order.1")
    )
    second = await goes_to(
        "test-rabbitmq", letter(origin_exchange="orders", origin_routing_key="order.2")
    )
    neither = await goes_to(
        "test-rabbitmq", letter(origin_exchange="other", origin_routing_key="order.2")
    )

    assert (both.redirect, both.where) == (first.id, "a / order.1")
    assert second.where == "b / order.2" and second.redirect == first.id + 1
    assert (neither.redirect, neither.where) == (None, "other / order.2")


async def test_redirects_of_one_cluster_leave_the_other_alone(use_clusters, admin_user_):
    await add(admin_user_, "test-rabbitmq", {"routing_key": "orders"}, {"routing_key": "x"})

    route = await sync_to_async(redirects.goes_to)("test-kafka", letter(origin_topic="orders"))

    assert (route.redirect, route.where) == (None, "orders")
