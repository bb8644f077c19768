"""The alerts websocket through the real ASGI app and the real Redis channel layer: the
session and Origin checks, the counts on connect, and one message per real change (an
evaluation of the engine, an acknowledgement, a silence starting and ending)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from dashboard.alerts import manage
from dashboard.alerts.engine import evaluate, evaluate_workers
from dashboard.alerts.hook import push_ended_silences
from dashboard.core.clusters import sync_cluster_rows
from dashboard.core.websockets import UNAUTHENTICATED
from dashboard.models import Alert, AlertRule, Cluster, Consumer, Silence
from tests.support.alerts import make_alert, queue_sample
from tests.support.websockets import connect

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.usefixtures("use_clusters"),
]

SLUG = "test-rabbitmq"
URL = "/ws/alerts/"


def rules(*names: str) -> None:
    for name in names:
        AlertRule.objects.create(
            name=f"deep {name}",
            kind=AlertRule.Kind.QUEUE_DEPTH,
            syntax=AlertRule.Syntax.EXACT,
            pattern=name,
            threshold=10,
        )


def sample(**depths: int) -> None:
    """One evaluation of test-rabbitmq after a sample of these queues in vhost ``/``."""
    cluster = sync_cluster_rows()[SLUG]
    evaluate(cluster.pk, SLUG, queue_sample(SLUG, dict(depths)), timezone.now())


async def next_of(communicator: Any, kind: str) -> dict[str, Any]:
    message: dict[str, Any] = await communicator.receive_json_from(timeout=10)
    assert message["type"] == kind, message
    return message


async def test_it_refuses_a_socket_without_a_session(client):
    _, connected, code = await connect(client, None, URL)
    assert not connected and code == UNAUTHENTICATED


async def test_it_refuses_a_foreign_origin(client, viewer):
    _, connected, _ = await connect(client, viewer, URL, origin=(b"origin", b"http://evil.example"))
    assert not connected


async def test_a_viewer_gets_the_counts_on_connect_silenced_ones_left_out(client, viewer):
    def seed() -> None:
        cluster = sync_cluster_rows()[SLUG]
        make_alert(cluster, "%2F/orders")
        make_alert(cluster, "%2F/orders", kind="no_consumers")
        make_alert(cluster, "%2F/payments")
        make_alert(cluster, "%2F/hushed")
        make_alert(cluster, "%2F/orders", state="pending", kind="not_delivering")
        make_alert(cluster, "%2F/old", state="resolved")
        make_alert(cluster, "orders-dlq", kind="dlq_arrivals")
        now = timezone.now()
        Silence.objects.create(
            matchers={"entity": "*/hushed"},
            starts_at=now,
            ends_at=now + timedelta(hours=1),
            reason="test",
        )

    await sync_to_async(seed)()
    query = f"?cluster={SLUG}&subject=entity:%252F/orders&subject=dlq:orders-dlq&subject=group:x"
    communicator, connected, _ = await connect(client, viewer, URL + query)
    assert connected
    message = await next_of(communicator, "alerts.counts")
    assert message["counts"] == {"firing": 4, "pending": 1}
    assert message["subjects"] == [
        {"cluster": SLUG, "subject": "entity:%2F/orders", "firing": 2, "pending": 1},
        {"cluster": SLUG, "subject": "dlq:orders-dlq", "firing": 1, "pending": 0},
        {"cluster": SLUG, "subject": "group:x", "firing": 0, "pending": 0},
    ]
    await communicator.disconnect()


async def test_an_evaluation_sends_one_message_and_one_that_changed_nothing_none(client, viewer):
    await sync_to_async(rules)("live-a", "live-b")
    communicator, connected, _ = await connect(client, viewer, URL)
    assert connected
    assert (await next_of(communicator, "alerts.counts"))["counts"] == {"firing": 0, "pending": 0}

    await sync_to_async(sample)(**{"live-a": 50, "live-b": 50})
    fired = await next_of(communicator, "alerts.changed")
    ids = dict(await sync_to_async(lambda: list(Alert.objects.values_list("entity", "pk")))())
    assert sorted((c["id"], c["state"], c["change"]) for c in fired["changes"]) == [
        (ids["%2F/live-a"], "firing", "fired"),
        (ids["%2F/live-b"], "firing", "fired"),
    ]
    assert fired["counts"] == {"firing": 2, "pending": 0} and fired["complete"]
    assert {s["subject"]: s["firing"] for s in fired["subjects"]} == {
        "entity:%2F/live-a": 1,
        "entity:%2F/live-b": 1,
    }
    assert set(fired["changes"][0]) == {"id", "cluster", "subject", "state", "change"}

    await sync_to_async(sample)(**{"live-a": 60, "live-b": 70})  # still firing: nothing
    await sync_to_async(sample)(**{"live-a": 0, "live-b": 70})
    resolved = await next_of(communicator, "alerts.changed")
    assert [(c["id"], c["change"]) for c in resolved["changes"]] == [
        (ids["%2F/live-a"], "resolved")
    ]
    assert resolved["counts"] == {"firing": 1, "pending": 0}
    await communicator.disconnect()


async def test_acknowledging_and_silencing_are_pushed_with_the_counts(client, viewer, operator):
    await sync_to_async(rules)("live-c")
    await sync_to_async(sample)(**{"live-c": 50})
    alert = await Alert.objects.aget(entity="%2F/live-c")
    communicator, connected, _ = await connect(client, viewer, URL)
    assert connected
    assert (await next_of(communicator, "alerts.counts"))["counts"]["firing"] == 1

    await sync_to_async(manage.do_acknowledge_alert)(user=operator, alert_id=alert.pk)
    acknowledged = await next_of(communicator, "alerts.changed")
    assert [(c["id"], c["change"]) for c in acknowledged["changes"]] == [(alert.pk, "acknowledged")]

    data = manage.SilenceInput({"entity": "*/live-c"}, 3600, "draining")
    silence = await sync_to_async(manage.do_create_silence)(user=operator, data=data)
    silenced = await next_of(communicator, "alerts.changed")
    assert [(c["id"], c["change"]) for c in silenced["changes"]] == [(alert.pk, "silenced")]
    assert silenced["counts"] == {"firing": 0, "pending": 0}

    await sync_to_async(manage.do_expire_silence)(user=operator, silence_id=silence.pk)
    back = await next_of(communicator, "alerts.changed")
    assert [(c["id"], c["change"]) for c in back["changes"]] == [(alert.pk, "unsilenced")]
    assert back["counts"] == {"firing": 1, "pending": 0}
    await communicator.disconnect()


async def test_a_page_asks_for_its_counts_again(client, viewer):
    communicator, connected, _ = await connect(client, viewer, URL + f"?cluster={SLUG}")
    assert connected
    await next_of(communicator, "alerts.counts")
    await sync_to_async(lambda: make_alert(sync_cluster_rows()[SLUG], "%2F/asked"))()
    await communicator.send_json_to({"type": "counts"})
    again = await next_of(communicator, "alerts.counts")
    assert again["counts"] == {"firing": 1, "pending": 0}
    await communicator.disconnect()


async def test_a_worker_evaluation_is_pushed_like_a_sample(client, viewer):
    """The collector's Celery loop evaluates worker rules on its own: pages hear of it too."""

    def gone_worker() -> Cluster:
        cluster = Cluster.objects.create(slug="alerts-ws-workers", kind="redis", name="W")
        AlertRule.objects.create(
            name="gone", kind=AlertRule.Kind.CELERY_WORKER_GONE, pattern="w1@*", for_seconds=0
        )
        seen = timezone.now() - timedelta(seconds=30)
        Consumer.objects.create(
            cluster=cluster,
            kind="celery",
            identity="w1@host",
            source="/tasks",
            state="gone",
            first_seen=seen - timedelta(hours=1),
            last_seen=seen,
        )
        return cluster

    cluster = await sync_to_async(gone_worker)()
    communicator, connected, _ = await connect(client, viewer, URL)
    assert connected
    assert (await next_of(communicator, "alerts.counts"))["counts"] == {"firing": 0, "pending": 0}
    await sync_to_async(evaluate_workers)(cluster.pk, cluster.slug)
    fired = await next_of(communicator, "alerts.changed")
    assert [(c["state"], c["change"]) for c in fired["changes"]] == [("firing", "fired")]
    assert fired["counts"] == {"firing": 1, "pending": 0}
    await communicator.disconnect()


async def test_a_silence_whose_time_runs_out_is_pushed_after_the_next_sample(
    client, viewer, operator
):
    await sync_to_async(rules)("live-e")
    await sync_to_async(sample)(**{"live-e": 50})
    alert = await Alert.objects.aget(entity="%2F/live-e")
    data = manage.SilenceInput({"entity": "*/live-e"}, 3600, "short")
    silence = await sync_to_async(manage.do_create_silence)(user=operator, data=data)
    await sync_to_async(push_ended_silences)()  # this process has looked once
    communicator, connected, _ = await connect(client, viewer, URL)
    assert connected
    assert (await next_of(communicator, "alerts.counts"))["counts"]["firing"] == 0

    # Its time runs out: nobody expires it.
    await Silence.objects.filter(pk=silence.pk).aupdate(ends_at=timezone.now())
    await sync_to_async(push_ended_silences)()
    back = await next_of(communicator, "alerts.changed")
    assert [(c["id"], c["change"]) for c in back["changes"]] == [(alert.pk, "unsilenced")]
    assert back["counts"] == {"firing": 1, "pending": 0}
    await sync_to_async(push_ended_silences)()  # already told: nothing more
    assert await communicator.receive_nothing(timeout=1)
    await communicator.disconnect()
