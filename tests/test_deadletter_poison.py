"""The loop guard: a message requeued and dead-lettered again N times is captured as poison.

Against the real brokers: RabbitMQ messages really rejected into the DLQ again
after each requeue, and Kafka records the origin's consumer "fails on" (the
requeued record, read from the origin, written back to the DLT), captured by the
real engines. The inbox and the letter page show the badge, and a manual requeue's
confirmation warns.
"""

from __future__ import annotations

import html
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.test import Client

from dashboard.core import clusters
from dashboard.deadletters import requeue as service
from dashboard.deadletters.inbox import InboxFilter, get_inbox_groups
from dashboard.deadletters.loop_guard import may_retry_automatically
from dashboard.models import DeadLetter
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h

pytestmark = [pytest.mark.django_db(transaction=True)]


@sync_to_async
def fresh(letter: DeadLetter) -> DeadLetter:
    return DeadLetter.objects.get(pk=letter.pk)


@sync_to_async
def page(user, url: str) -> str:
    client = Client()
    client.force_login(user)
    response = client.get(url)
    assert response.status_code == 200, url
    return html.unescape(response.content.decode())


@sync_to_async
def dry_run_page(user, fields: dict[str, str]) -> str:
    """The dry run of a bulk requeue of ``fields`` (the inbox's bulk form), as its page shows."""
    client = Client()
    client.force_login(user)
    answer = client.post("/deadletters/requeue-bulk", fields)
    assert answer.status_code == 303, answer
    return html.unescape(client.get(answer["Location"]).content.decode())


async def reject_requeued(made: flow.RabbitFlow) -> None:
    """The origin's consumer fails on the requeued message again: reject it into the DLQ."""
    connection = await h.amqp(made.vhost)
    try:
        channel = await connection.channel()
        queue = await channel.get_queue(made.work)
        message = await h.async_wait_for(lambda: queue.get(fail=False), 10, what="requeued")
        await message.reject(requeue=False)
    finally:
        await connection.close()


@pytest.mark.rabbitmq
async def test_a_rabbitmq_letter_back_n_times_is_poison_with_badge_and_warning(
    use_clusters, rabbitmq_vhost, operator, settings
):
    settings.MQB_DEADLETTER_POISON_AFTER = 3
    message_id = f"poison-{uuid.uuid4().hex[:6]}"
    made = await flow.rabbitmq_dead_letters(rabbitmq_vhost, [message_id, f"{message_id}-ok"])
    letter = next(r for r in await flow.rows_of(made.dlq) if r.message_id == message_id)
    assert (letter.came_back, letter.poison) == (0, False)
    for times in (1, 2, 3):
        assert (await service.do_requeue_dead_letter(letter.pk, user=operator)).sent
        await reject_requeued(made)
        before = len(await flow.rows_of(made.dlq))

        async def stored(expected: int = before + 1) -> bool:
            return await flow.stored_count(made.dlq) >= expected

        await flow.capture_until(made.target, stored)
        letter = (await flow.rows_of(made.dlq))[-1]
        assert letter.message_id == message_id
        assert letter.came_back == times
        assert letter.poison is (times >= 3)
    assert not may_retry_automatically(letter)

    inbox = await page(operator, f"/deadletters/?dlq={made.dlq}&view=rows")
    assert inbox.count('data-status="poison"') == 1
    only = await page(operator, f"/deadletters/?dlq={made.dlq}&view=rows&poison=1")
    assert f"#{letter.pk}<" in only and only.count('data-letter="') == 1
    detail = await page(operator, f"/deadletters/{letter.pk}/")
    assert 'id="letter-poison"' in detail
    assert f"Requeue dead letter #{letter.pk} to " in detail
    assert "Warning: it is poison, it came back 3 times after being requeued." in detail
    groups = await page(operator, f"/deadletters/?dlq={made.dlq}")
    assert 'data-col="poison"' in groups
    dry_run = await dry_run_page(operator, {"dlq": made.dlq})
    assert "1 of them is poison (came back 3 times or more" in dry_run

    # A person can still requeue it by hand.
    result = await service.do_requeue_dead_letter(letter.pk, user=operator)
    assert result.sent and (await fresh(letter)).status == "requeued"


@pytest.mark.kafka
async def test_a_kafka_letter_back_n_times_is_poison(use_clusters, operator, settings):
    settings.MQB_DEADLETTER_POISON_AFTER = 2
    origin = h.create_topic(h.kafka_name("-orders"))
    dlq = h.create_topic(h.kafka_name("-dlq"))
    settings.MQB_KAFKA_CAPTURE_GROUP = f"{dlq}-group-{{slug}}"
    try:
        [letter] = await flow.kafka_dead_letters(origin, dlq, [b"loops"])
        target = await flow.manage("test-kafka", "", dlq)
        for times in (1, 2):
            assert (await service.do_requeue_dead_letter(letter.pk, user=operator)).sent
            records = await sync_to_async(flow.read_topic)(origin, times)
            # The origin's consumer fails on it again: the record goes back to the DLT.
            await sync_to_async(h.produce)(dlq, [records[-1]])

            async def stored(expected: int = times + 1) -> bool:
                return await flow.stored_count(dlq) >= expected

            await flow.capture_until(target, stored)
            letter = (await flow.rows_of(dlq))[-1]
            assert (letter.came_back, letter.poison) == (times, times >= 2)
        detail = await page(operator, f"/deadletters/{letter.pk}/")
        assert "Warning: it is poison, it came back 2 times after being requeued." in detail
    finally:
        h.delete_group(settings.MQB_KAFKA_CAPTURE_GROUP.format(slug="test-kafka"))
        h.delete_topics(origin, dlq)


def _letter(cluster, n: int, **fields) -> DeadLetter:
    return DeadLetter.objects.create(
        cluster=cluster, dlq="dlq-times", capture_key=f"k{n}", fingerprint="f" * 32,
        origin_queue="orders", exception_class="OrderRejected", **fields,
    )  # fmt: skip


def test_group_first_and_last_seen_are_failure_times(use_clusters, operator) -> None:
    cluster = clusters.sync_cluster_rows()["test-rabbitmq"]
    failed = datetime(2026, 1, 5, 6, 36, 10, tzinfo=UTC)
    _letter(cluster, 1, first_failed_at=failed - timedelta(minutes=1), last_failed_at=failed)
    _letter(cluster, 2, first_failed_at=failed, last_failed_at=failed + timedelta(seconds=50))
    unknown = _letter(cluster, 3)  # no failure time known: its capture time counts
    [group] = get_inbox_groups(InboxFilter(dlq="dlq-times")).object_list
    assert group["first_seen"] == failed - timedelta(minutes=1)
    assert group["last_seen"] == unknown.captured_at
    DeadLetter.objects.filter(pk=unknown.pk).delete()
    [group] = get_inbox_groups(InboxFilter(dlq="dlq-times")).object_list
    assert group["last_seen"] == failed + timedelta(seconds=50)

    client = Client()
    client.force_login(operator)
    text = client.get("/deadletters/?dlq=dlq-times").content.decode()
    assert 'datetime="2026-01-05T06:35:10Z"' in text
    assert 'datetime="2026-01-05T06:37:00Z"' in text


def test_only_a_poison_letter_may_not_be_retried_automatically() -> None:
    assert may_retry_automatically(DeadLetter(poison=False))
    assert not may_retry_automatically(DeadLetter(poison=True, came_back=3))


@pytest.mark.kafka
async def test_a_managed_kafka_dlq_shows_what_capture_committed_and_its_lag(
    use_clusters, operator, settings
):
    origin = h.create_topic(h.kafka_name("-orders"))
    dlq = h.create_topic(h.kafka_name("-dlq"))
    settings.MQB_KAFKA_CAPTURE_GROUP = f"{dlq}-group-{{slug}}"
    try:
        await flow.kafka_dead_letters(origin, dlq, [b"a", b"b", b"c"])
        text = await page(operator, "/deadletters/queues/")
        row = text[text.index(f'data-dlq="{dlq}"') :]
        row = row[: row.index("</tr>")]
        # Depth stays 3 (high minus low watermark); capture committed up to offset 3.
        assert "captured up to offset 3<" in row
        assert "capture lag 0 records" in row
        # Two more records arrive while capture is not running: the lag says so.
        await sync_to_async(h.produce)(dlq, [(b"d", b"{}", []), (b"e", b"{}", [])])
        text = await page(operator, "/deadletters/queues/")
        row = text[text.index(f'data-dlq="{dlq}"') :]
        assert "capture lag 2 records" in row[: row.index("</tr>")]
    finally:
        h.delete_group(settings.MQB_KAFKA_CAPTURE_GROUP.format(slug="test-kafka"))
        h.delete_topics(origin, dlq)
