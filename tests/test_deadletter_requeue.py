"""Requeue and discard of captured dead letters, against the real brokers.

Dead letters are made by really dead-lettering messages (RabbitMQ) or
producing Spring-style DLT records (Kafka) and capturing them with the real
capture engine; requeues are checked at the origin queue or topic.
"""

from __future__ import annotations

import json
import os
import uuid

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied

from brokers.base.deadletters import Edit, RequeueTarget
from dashboard.core.params import InvalidInput
from dashboard.deadletters import discard
from dashboard.deadletters import requeue as service
from dashboard.deadletters.inbox import InboxFilter, get_inbox_groups
from dashboard.models import AuditEntry, DeadLetter
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h

pytestmark = [pytest.mark.django_db(transaction=True)]


@sync_to_async
def fresh(letter: DeadLetter) -> DeadLetter:
    return DeadLetter.objects.get(pk=letter.pk)


@sync_to_async
def audit_of(letter: DeadLetter) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(target=f"deadletter:{letter.pk}").order_by("time"))


@pytest.fixture
async def rabbit(use_clusters, rabbitmq_vhost):
    ids = [f"rq-{i}-{uuid.uuid4().hex[:6]}" for i in range(3)]
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, ids)
    return made, await flow.rows_of(made.dlq)


@pytest.fixture
def kafka_topics(use_clusters, settings):
    origin = h.create_topic(h.kafka_name("-orders"))
    dlq = h.create_topic(h.kafka_name("-dlq"))
    settings.MQB_KAFKA_CAPTURE_GROUP = f"{dlq}-group-{{slug}}"
    yield origin, dlq
    h.delete_group(settings.MQB_KAFKA_CAPTURE_GROUP.format(slug="test-kafka"))
    h.delete_topics(origin, dlq)


@pytest.mark.rabbitmq
async def test_it_requeues_one_rabbitmq_letter_to_its_origin_queue(rabbit, operator):
    made, rows = rabbit
    letter = rows[0]

    result = await service.do_requeue_dead_letter(letter.pk, user=operator)

    assert result.sent and result.status == "requeued"
    [message] = await flow.take_all(made.vhost, made.work)
    assert message.message_id == letter.message_id
    assert message.headers["x-mqboard-requeue-count"] == 1
    assert message.headers["x-tenant"] == "acme"
    assert message.content_type == "application/json"
    assert message.body == bytes(letter.body)
    after = await fresh(letter)
    assert (after.status, after.requeue_count, after.acted_by_id) == (
        "requeued",
        1,
        operator.pk,
    )
    [entry] = await audit_of(letter)
    assert (entry.action, entry.outcome) == ("deadletter.requeue", "ok")


@pytest.mark.rabbitmq
async def test_a_10_mb_dead_letter_is_kept_whole_shown_cut_and_requeued_whole(
    use_clusters, rabbitmq_vhost, operator, async_client
):
    big = b'{"blob": "' + os.urandom(5 * 1024 * 1024).hex().encode() + b'"}'  # 10 MiB of JSON
    message_id = f"big-{uuid.uuid4().hex[:6]}"
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, [message_id], bodies=[big])
    [letter] = await flow.rows_of(made.dlq)
    await async_client.aforce_login(operator)

    page = await async_client.get(f"/deadletters/{letter.pk}/")
    download = await async_client.get(f"/deadletters/{letter.pk}/body")
    result = await service.do_requeue_dead_letter(letter.pk, user=operator)

    assert (letter.body_size, letter.body_truncated) == (len(big), True)
    assert page.status_code == 200
    assert len(page.content) < 2 * 1024 * 1024  # the page shows the first part only
    assert b"only the first part is shown" in page.content
    assert download.status_code == 200
    assert download["Content-Type"] == "application/octet-stream"
    assert download.content == big
    assert result.sent
    [message] = await flow.take_all(made.vhost, made.work)
    assert (message.message_id, message.body) == (message_id, big)


@pytest.mark.rabbitmq
async def test_a_double_requeue_sends_once(rabbit, operator):
    made, rows = rabbit
    await service.do_requeue_dead_letter(rows[0].pk, user=operator)

    with pytest.raises(service.AlreadyHandled, match="already requeued"):
        await service.do_requeue_dead_letter(rows[0].pk, user=operator)

    await flow.take_all(made.vhost, made.work, expect=1)
    assert await h.depth(made.vhost, made.work) == 0


@pytest.mark.rabbitmq
async def test_an_unroutable_requeue_marks_the_row_and_sends_nothing(rabbit, operator):
    made, rows = rabbit
    missing = RequeueTarget(exchange=f"gone-{uuid.uuid4().hex[:6]}", routing_key="x")
    nowhere = RequeueTarget(exchange=made.events, routing_key="nothing.binds.this")

    first = await service.do_requeue_dead_letter(rows[0].pk, user=operator, target=missing)
    second = await service.do_requeue_dead_letter(rows[1].pk, user=operator, target=nowhere)

    assert not first.sent and first.message.startswith("unroutable: ")
    assert "does not exist" in first.message
    assert not second.sent and "no queue is bound" in second.message
    for letter in rows[:2]:
        after = await fresh(letter)
        assert after.status == "requeue_failed"
        assert after.last_error.startswith("unroutable: ")
    assert await h.depth(made.vhost, made.work) == 0
    [entry] = await audit_of(rows[0])
    assert entry.outcome == "failed"


@pytest.mark.rabbitmq
async def test_it_requeues_to_a_target_the_user_chose(rabbit, operator, rabbitmq_vhost):
    made, rows = rabbit
    other = f"{made.work}-other"
    connection = await h.amqp(rabbitmq_vhost)
    channel = await connection.channel()
    await channel.declare_queue(other)
    await connection.close()

    target = RequeueTarget(exchange="", routing_key=other)
    result = await service.do_requeue_dead_letter(rows[0].pk, user=operator, target=target)

    assert result.sent
    [message] = await flow.take_all(rabbitmq_vhost, other)
    assert message.message_id == rows[0].message_id


@pytest.mark.rabbitmq
async def test_edit_and_requeue_validates_json_and_audits_the_diff(rabbit, operator):
    made, rows = rabbit
    bad = Edit(body=b"{not json")

    with pytest.raises(InvalidInput, match="not valid JSON"):
        await service.do_requeue_dead_letter(rows[0].pk, user=operator, edit=bad)
    assert (await fresh(rows[0])).status == "pending"

    headers = {**rows[0].headers, "x-fixed": "yes"}
    good = Edit(body=b'{"order": 0, "customer": 7}', headers=headers)
    await service.do_requeue_dead_letter(rows[0].pk, user=operator, edit=good)

    [message] = await flow.take_all(made.vhost, made.work)
    assert json.loads(message.body) == {"order": 0, "customer": 7}
    assert message.headers["x-fixed"] == "yes"
    [entry] = await audit_of(rows[0])
    assert '+{"order": 0, "customer": 7}' in entry.parameters["diff"]["body"]
    assert entry.parameters["diff"]["headers"]["added"] == ["x-fixed"]


@pytest.mark.rabbitmq
async def test_it_refuses_requeue_and_discard_for_viewers(rabbit, viewer):
    _made, rows = rabbit
    with pytest.raises(PermissionDenied):
        await service.do_requeue_dead_letter(rows[0].pk, user=viewer)
    with pytest.raises(PermissionDenied):
        await discard.do_discard_dead_letters([rows[0].pk], user=viewer)
    assert (await fresh(rows[0])).status == "pending"
    [entry] = await audit_of(rows[0])
    assert entry.outcome == "refused"


@pytest.mark.rabbitmq
async def test_discard_keeps_the_row_and_discard_all_needs_an_admin(rabbit, operator, admin_user_):
    made, rows = rabbit
    assert await discard.do_discard_dead_letters([rows[0].pk], user=operator) == 1
    assert (await fresh(rows[0])).status == "discarded"
    with pytest.raises(service.AlreadyHandled):
        await service.do_requeue_dead_letter(rows[0].pk, user=operator)

    spec = InboxFilter(dlq=made.dlq)
    with pytest.raises(PermissionDenied):
        await discard.do_discard_matching(spec, user=operator)
    assert await discard.do_discard_matching(spec, user=admin_user_) == 2
    statuses = {r.status for r in await flow.rows_of(made.dlq)}
    assert statuses == {"discarded"}


@pytest.mark.rabbitmq
async def test_a_requeued_message_that_dead_letters_again_is_marked_failed_again(rabbit, operator):
    made, rows = rabbit
    letter = rows[0]
    await service.do_requeue_dead_letter(letter.pk, user=operator)
    # The consumer fails again: reject the requeued message from the work queue.
    connection = await h.amqp(made.vhost)
    channel = await connection.channel()
    queue = await channel.get_queue(made.work)
    message = await h.async_wait_for(lambda: queue.get(fail=False), 10, what="requeued message")
    await message.reject(requeue=False)
    await connection.close()

    async def stored() -> bool:
        return await flow.stored_count(made.dlq) == len(rows) + 1

    await flow.capture_until(made.target, stored)

    old = await fresh(letter)
    assert old.status == "failed_again"
    newest = (await flow.rows_of(made.dlq))[-1]
    assert old.failed_again_as_id == newest.pk
    assert newest.message_id == letter.message_id
    assert newest.headers["x-mqboard-requeue-count"] == 1


@pytest.mark.kafka
async def test_it_requeues_one_kafka_letter_to_its_origin_topic(kafka_topics, operator):
    origin, dlq = kafka_topics
    rows = await flow.kafka_dead_letters(origin, dlq, [b"key-0", b"key-1"])
    letter = next(r for r in rows if bytes(r.key or b"") == b"key-1")

    result = await service.do_requeue_dead_letter(letter.pk, user=operator)

    assert result.sent
    [(key, value, headers)] = await sync_to_async(flow.read_topic)(origin, 1)
    assert key == b"key-1"
    assert value == bytes(letter.body)
    assert ("x-tenant", b"acme") in headers
    assert ("x-mqboard-requeue-count", b"1") in headers
    assert ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException") in headers
    assert (await fresh(letter)).status == "requeued"


@pytest.mark.kafka
async def test_an_unknown_topic_marks_the_row_and_sends_nothing(kafka_topics, operator):
    origin, dlq = kafka_topics
    [letter] = await flow.kafka_dead_letters(origin, dlq, [b"k"])
    target = RequeueTarget(topic=h.kafka_name("-missing"))

    result = await service.do_requeue_dead_letter(letter.pk, user=operator, target=target)

    assert not result.sent
    after = await fresh(letter)
    assert after.status == "requeue_failed"
    assert after.last_error.startswith("unknown topic ")


@pytest.mark.rabbitmq
async def test_no_verdict_outside_the_window_and_groups_count_what_came_back(
    rabbit, operator, settings
):
    made, rows = rabbit
    for letter in rows[:2]:
        await service.do_requeue_dead_letter(letter.pk, user=operator)
    await flow.take_all(made.vhost, made.work, expect=2)
    settings.MQB_DLQ_VERDICT_WINDOW = 0
    await flow.dead_letter_again(made, [rows[0].message_id])
    assert (await fresh(rows[0])).status == "requeued"

    settings.MQB_DLQ_VERDICT_WINDOW = 3600
    await flow.dead_letter_again(made, [rows[1].message_id])

    assert (await fresh(rows[1])).status == "failed_again"
    groups = await sync_to_async(
        lambda: list(get_inbox_groups(InboxFilter(dlq=made.dlq)).object_list)
    )()
    [group] = groups
    assert (group["count"], group["requeued"], group["failed_again"]) == (5, 2, 1)


@pytest.mark.kafka
async def test_a_kafka_letter_back_with_the_same_key_and_fingerprint_is_failed_again(
    kafka_topics, operator
):
    origin, dlq = kafka_topics
    rows = await flow.kafka_dead_letters(origin, dlq, [b"again", b"other"])
    letter = next(r for r in rows if bytes(r.key or b"") == b"again")
    await service.do_requeue_dead_letter(letter.pk, user=operator)

    # The consumer of the origin fails on it again: the same record in the DLT.
    both = await flow.kafka_dead_letters(origin, dlq, [b"again"])

    newest = max(both, key=lambda r: r.pk)
    old = await fresh(letter)
    assert (old.status, old.failed_again_as_id) == ("failed_again", newest.pk)
    other = next(r for r in rows if bytes(r.key or b"") == b"other")
    assert (await fresh(other)).status == "pending"
