"""Retry rules in the capture transaction (database only): letters are stored already scheduled
or parked, and a letter whose comebacks the verdict's chain raised in the same batch is decided
on the stored count, not on what its headers said."""

from __future__ import annotations

import pytest
from django.utils import timezone

from brokers.base.deadletters import CapturedLetter
from brokers.decode.metadata import amqp_failure_info
from dashboard.core import clusters
from dashboard.deadletters.store import CaptureTarget, RabbitMQSession, store_rabbitmq_batch
from dashboard.models import DeadLetter, ManagedDeadLetterQueue, PolicyDecision, RetryPolicy

pytestmark = pytest.mark.django_db


@pytest.fixture
def target(use_clusters) -> CaptureTarget:
    cluster = clusters.sync_cluster_rows()["test-rabbitmq"]
    row = ManagedDeadLetterQueue.objects.create(cluster=cluster, vhost="v", name="q.dlq")
    return CaptureTarget(row.pk, cluster.pk, "test-rabbitmq", "rabbitmq", "v", "q.dlq")


def letter(message_id: str) -> CapturedLetter:
    """A letter without a requeue-count header (it says it never came back)."""
    return CapturedLetter(
        dlq="q.dlq",
        vhost="v",
        capture_key=f"hash-{message_id}",
        info=amqp_failure_info({}, {"message_id": message_id}, dlq="q.dlq"),
        headers={},
        properties={"message_id": message_id},
        body=b"x",
    )


def rule(name: str, position: int, **values: object) -> RetryPolicy:
    return RetryPolicy.objects.create(
        name=name, position=position, enabled=True, syntax="glob", match_dlq="q.*",
        delay_seconds=60, factor=2, cap_seconds=3600, jitter=0, **values,
    )  # fmt: skip


def decisions(letter: DeadLetter) -> list[tuple[str, str, int, bool]]:
    found = PolicyDecision.objects.filter(dead_letter=letter).order_by("pk")
    return [(d.policy_name, d.action, d.attempt, d.dry_run) for d in found]


def requeued(target: CaptureTarget, message_id: str, came_back: int) -> DeadLetter:
    return DeadLetter.objects.create(
        cluster_id=target.cluster_id, vhost="v", dlq="q.dlq", capture_key=f"old-{message_id}",
        message_id=message_id, status=DeadLetter.Status.REQUEUED, acted_at=timezone.now(),
        came_back=came_back,
    )  # fmt: skip


def test_letters_are_stored_scheduled_and_a_comeback_in_the_batch_is_decided_on_its_chain(
    target,
):
    watch = rule("watch", 0, dry_run=True, max_attempts=3)
    retry = rule("retry twice", 1, dry_run=False, max_attempts=2)
    old = requeued(target, "m-back", came_back=1)
    store_rabbitmq_batch(target, RabbitMQSession(), [letter("m-new"), letter("m-back")])

    new = DeadLetter.objects.get(message_id="m-new")
    assert (new.status, new.policy_id, new.parked) == ("scheduled", retry.pk, False)
    assert new.due_at is not None and new.due_at > timezone.now()
    assert decisions(new) == [("watch", "retry", 0, True), ("retry twice", "retry", 0, False)]

    # Its headers said it never came back; the chain says twice: no retry left, parked.
    back = DeadLetter.objects.get(message_id="m-back", capture_key="hash-m-back")
    old.refresh_from_db()
    assert (old.status, old.failed_again_as_id) == ("failed_again", back.pk)
    assert back.came_back == 2
    assert (back.status, back.due_at, back.parked, back.policy_id) == (
        "pending",
        None,
        True,
        retry.pk,
    )
    assert decisions(back) == [("watch", "retry", 2, True), ("retry twice", "park", 2, False)]
    assert watch.pk not in {new.policy_id, back.policy_id}


def test_a_letter_the_chain_makes_poison_is_never_scheduled(target, settings):
    settings.MQB_DEADLETTER_POISON_AFTER = 2
    retry = rule("retry", 0, dry_run=False, max_attempts=5)
    requeued(target, "m-poison", came_back=1)
    store_rabbitmq_batch(target, RabbitMQSession(), [letter("m-poison")])

    back = DeadLetter.objects.get(capture_key="hash-m-poison")
    assert (back.came_back, back.poison) == (2, True)
    assert (back.status, back.due_at, back.parked, back.policy_id) == (
        "pending",
        None,
        True,
        retry.pk,
    )
    assert decisions(back) == [("retry", "poison", 2, False)]
