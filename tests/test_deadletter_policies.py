"""Retry policies at capture, against the real brokers: letters really dead-lettered into a
managed RabbitMQ DLQ (and a Kafka DLT), captured by the real engines, are scheduled by a
retry rule, only recorded by a dry-run rule, parked after N attempts, never retried when
poison; the first active rule acts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.utils import timezone

from dashboard.deadletters.policies import rules
from dashboard.models import AuditEntry, DeadLetter, PolicyDecision
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h
from tests.support.policies import dispatch_until_sent, make_rule, reject_with_count

pytestmark = [pytest.mark.django_db(transaction=True)]


@sync_to_async
def decisions(letter: DeadLetter) -> list[tuple[str, str, bool, int]]:
    return [
        (d.policy_name, d.action, d.dry_run, d.attempt)
        for d in PolicyDecision.objects.filter(dead_letter=letter).order_by("pk")
    ]


@sync_to_async
def fresh(letter: DeadLetter) -> DeadLetter:
    return DeadLetter.objects.get(pk=letter.pk)


@sync_to_async
def stats(policy_id: int) -> rules.PolicyStats:
    return rules.stats_of([policy_id])[policy_id]


@pytest.mark.rabbitmq
async def test_a_retry_rule_schedules_matching_rabbitmq_letters_and_dry_runs_only_record(
    use_clusters, rabbitmq_vhost, admin_user_
):
    await make_rule(admin_user_, "payments only", dry_run=False, match_dlq="payments*")
    dry = await make_rule(admin_user_, "try orders", dry_run=True, match_origin="order.*.created")
    acting = await make_rule(
        admin_user_, "orders", dry_run=False, match_reason="rejected", delay_seconds=30,
        factor=3, cap_seconds=3600, max_attempts=3,
    )  # fmt: skip
    later = await make_rule(admin_user_, "everything", dry_run=False, match_dlq="*")
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, [f"pol-{uuid.uuid4().hex[:6]}"])
    [letter] = await flow.rows_of(made.dlq)
    assert letter.status == "scheduled" and letter.policy_id == acting.pk
    assert letter.due_at is not None
    assert letter.due_at - letter.captured_at == pytest.approx(
        timedelta(seconds=30), abs=timedelta(seconds=3)
    )
    # The dry run before it recorded what it would have done; the rule after it did nothing.
    assert await decisions(letter) == [
        ("try orders", "retry", True, 0),
        ("orders", "retry", False, 0),
    ]
    got = await stats(dry.pk)
    assert (got.would_retry, got.retries, got.matched) == (1, 0, 1)
    assert (await stats(acting.pk)).retries == 1
    assert (await stats(later.pk)).matched == 0

    # Its second attempt (came back once) waits delay * factor.
    await reject_with_count(made, f"pol-{uuid.uuid4().hex[:6]}", came_back=1)
    newest = (await flow.rows_of(made.dlq))[-1]
    assert newest.status == "scheduled" and newest.came_back == 1
    assert newest.due_at is not None
    assert newest.due_at - newest.captured_at == pytest.approx(
        timedelta(seconds=90), abs=timedelta(seconds=3)
    )


@pytest.mark.rabbitmq
async def test_only_a_dry_run_rule_leaves_the_letter_pending(
    use_clusters, rabbitmq_vhost, admin_user_
):
    await make_rule(admin_user_, "watch", dry_run=True, match_exception_class="")
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, [f"dry-{uuid.uuid4().hex[:6]}"])
    [letter] = await flow.rows_of(made.dlq)
    assert (letter.status, letter.policy_id, letter.parked, letter.due_at) == (
        "pending", None, False, None
    )  # fmt: skip
    assert await decisions(letter) == [("watch", "retry", True, 0)]


@pytest.mark.rabbitmq
async def test_a_letter_that_came_back_n_times_is_parked_and_poison_is_never_retried(
    use_clusters, rabbitmq_vhost, admin_user_, settings
):
    settings.MQB_DEADLETTER_POISON_AFTER = 5
    policy = await make_rule(admin_user_, "three tries", dry_run=False, max_attempts=3)
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, [f"n-{uuid.uuid4().hex[:6]}"])
    await reject_with_count(made, f"n-{uuid.uuid4().hex[:6]}", came_back=3)
    letter = (await flow.rows_of(made.dlq))[-1]
    assert (letter.came_back, letter.poison) == (3, False)
    assert (letter.status, letter.parked, letter.policy_id, letter.due_at) == (
        "pending", True, policy.pk, None
    )  # fmt: skip
    assert await decisions(letter) == [("three tries", "park", False, 3)]

    # Poison (the loop guard): never retried automatically, even below max_attempts.
    await sync_to_async(rules.do_update_policy)(
        user=admin_user_, policy_id=policy.pk,
        data=rules.RuleInput(name="three tries", dry_run=False, max_attempts=50, jitter=0),
    )  # fmt: skip
    await reject_with_count(made, f"p-{uuid.uuid4().hex[:6]}", came_back=5)
    poison = (await flow.rows_of(made.dlq))[-1]
    assert poison.poison and poison.status == "pending" and poison.parked
    assert await decisions(poison) == [("three tries", "poison", False, 5)]
    got = await stats(policy.pk)
    assert (got.retries, got.parked, got.poison) == (1, 1, 1)


@pytest.mark.rabbitmq
async def test_a_park_rule_parks_at_once_and_a_disabled_rule_stops_acting(
    use_clusters, rabbitmq_vhost, admin_user_
):
    policy = await make_rule(admin_user_, "park all", dry_run=False, action="park")
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, [f"pk-{uuid.uuid4().hex[:6]}"])
    [letter] = await flow.rows_of(made.dlq)
    assert letter.parked and letter.status == "pending"
    await sync_to_async(rules.do_set_mode)(user=admin_user_, policy_id=policy.pk, mode="disabled")
    await flow.dead_letter_again(made, [f"pk-{uuid.uuid4().hex[:6]}"])
    newest = (await flow.rows_of(made.dlq))[-1]
    assert not newest.parked and await decisions(newest) == []


@pytest.mark.kafka
async def test_a_retry_rule_schedules_kafka_letters(use_clusters, admin_user_, settings):
    origin = h.create_topic(h.kafka_name("-orders"))
    dlq = h.create_topic(h.kafka_name("-dlq"))
    settings.MQB_KAFKA_CAPTURE_GROUP = f"{dlq}-group-{{slug}}"
    try:
        policy = await make_rule(
            admin_user_, "kafka orders", cluster="test-kafka", dry_run=False,
            match_exception_class="*IllegalState*", delay_seconds=45,
        )  # fmt: skip
        await make_rule(admin_user_, "rabbit only", cluster="test-rabbitmq", dry_run=True)
        letters = await flow.kafka_dead_letters(origin, dlq, [b"k1", b"k2"])
        assert [(x.status, x.policy_id) for x in letters] == [("scheduled", policy.pk)] * 2
        for letter in letters:
            assert letter.due_at is not None
            assert letter.due_at - letter.captured_at == pytest.approx(
                timedelta(seconds=45), abs=timedelta(seconds=3)
            )
            assert await decisions(letter) == [("kafka orders", "retry", False, 0)]
    finally:
        h.delete_group(settings.MQB_KAFKA_CAPTURE_GROUP.format(slug="test-kafka"))
        h.delete_topics(origin, dlq)


@pytest.mark.rabbitmq
@pytest.mark.redis
async def test_a_deleted_rules_scheduled_letters_stay_scheduled_are_announced_and_still_sent(
    use_clusters, rabbitmq_vhost, admin_user_
):
    rule = await make_rule(
        admin_user_, "orders in an hour", dry_run=False, match_reason="rejected",
        delay_seconds=3600, cap_seconds=3600,
    )  # fmt: skip
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, [f"pol-{uuid.uuid4().hex[:6]}"])
    [letter] = await flow.rows_of(made.dlq)
    assert letter.status == "scheduled" and letter.due_at is not None
    assert (await stats(rule.pk)).waiting == 1

    # Before the delete, the page says what will happen to it.
    admin = Client()
    await sync_to_async(admin.force_login)(admin_user_)
    page = (await sync_to_async(admin.get)("/deadletters/policies/")).content.decode()
    assert "1 letter orders in an hour scheduled, not sent yet: in the inbox" in page
    assert "1 letter it scheduled will still be sent when due; cancel them from the inbox" in page

    assert await sync_to_async(rules.do_delete_policy)(user=admin_user_, policy_id=rule.pk) == 1
    entry = await sync_to_async(AuditEntry.objects.get)(action="deadletters.policy_delete")
    assert entry.parameters["still_scheduled"] == 1
    kept = await fresh(letter)
    assert (kept.status, kept.due_at, kept.policy_id) == ("scheduled", letter.due_at, None)
    assert await decisions(letter) == [("orders in an hour", "retry", False, 0)]

    # When it is due, the dispatcher sends it back to its origin all the same.
    await sync_to_async(DeadLetter.objects.filter(pk=letter.pk).update)(due_at=timezone.now())
    assert await dispatch_until_sent(letter.pk) == "stopped"
    [sent] = await flow.take_all(made.vhost, made.work)
    assert sent.message_id == letter.message_id
    assert (await fresh(letter)).status == "requeued"
