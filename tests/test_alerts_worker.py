"""Rule kind "Celery worker gone" with a real Celery worker on the shared Redis.

The collector's ``celery`` loop (driven here one answer at a time) records the worker;
killed with ``kill -9``, it misses answers until the tracking counts it gone, and the
alert fires and is delivered to a real local HTTP receiver; started again under the
same hostname, it answers and the alert resolves. Other runs' workers on the same
Redis answer too: the rules match only this run's hostname.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from dashboard.alerts import delivery
from dashboard.alerts.delivery import send_due
from dashboard.alerts.engine import evaluate, evaluate_workers
from dashboard.collector.consumers_tracking import CeleryWorkersLoop
from dashboard.metrics.celery_workers import broker_slug
from dashboard.models import Alert, AlertChannel, AlertRule, Cluster, Consumer
from tests.conftest import ROOT, celery_worker_command, python_env, stop_process
from tests.settings import RUN_ID
from tests.support.alerts import Receiver, queue_sample, receiver

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.celery]

HOSTNAME = f"mqb-alertw-{RUN_ID}@{socket.gethostname()}"


def start_worker(served_db: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        celery_worker_command("--hostname", HOSTNAME, queues="tasks"),
        cwd=ROOT,
        env=python_env(DATABASE_URL=served_db["DATABASE_URL"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture
def sink(monkeypatch) -> Iterator[Receiver]:
    with receiver() as state:
        monkeypatch.setenv("MQB_TEST_HOOK_URL", state.url)
        yield state


@pytest.fixture
def wakes(monkeypatch) -> list[int]:
    """The loop wakes the process's sender when it wrote notifications; here the test
    sends them itself (no sender thread outlives the test)."""
    woken: list[int] = []
    monkeypatch.setattr(delivery, "wake", lambda: woken.append(1))
    return woken


async def answered(loop: CeleryWorkersLoop, present: bool) -> None:
    """Ask the workers until this run's worker is (or is no longer) among the answers."""
    for _ in range(60):
        await loop.once()
        states = [state async for state in worker_rows().values_list("state", flat=True)]
        if states and ("active" in states) == present:
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"the worker never became {'present' if present else 'gone'}")


def worker_rows() -> QuerySet[Consumer]:
    return Consumer.objects.filter(kind="celery", identity=HOSTNAME, cluster__slug=loop_slug())


def loop_slug() -> str:
    return broker_slug(settings.CELERY_BROKER_URL)


def make_rules() -> None:
    channel = AlertChannel.objects.create(name="workers", url_env="MQB_TEST_HOOK_URL")
    gone = AlertRule.objects.create(
        name="worker gone",
        kind=AlertRule.Kind.CELERY_WORKER_GONE,
        syntax="glob",
        pattern=f"mqb-alertw-{RUN_ID}@*",
        for_seconds=0,
    )
    gone.channels.add(channel)
    AlertRule.objects.create(
        name="worker gone an hour",
        kind=AlertRule.Kind.CELERY_WORKER_GONE,
        syntax="exact",
        pattern=HOSTNAME,
        for_seconds=3600,
    )


async def test_a_killed_worker_fires_and_its_return_resolves(served_db, redis_url, sink, wakes):
    await sync_to_async(make_rules)()
    worker = start_worker(served_db)
    loop = CeleryWorkersLoop(settings.CELERY_BROKER_URL)
    try:
        await answered(loop, present=True)
        assert not await Alert.objects.filter(entity=HOSTNAME).aexists(), "a present worker"

        worker.kill()  # kill -9: no goodbye
        worker.wait(10)
        await answered(loop, present=False)
        alert = await Alert.objects.aget(entity=HOSTNAME, rule_name="worker gone")
        assert alert.state == "firing" and alert.kind == "celery_worker_gone"
        assert alert.value is not None and alert.value > 0
        assert wakes, "the sender was woken"
        assert not await Alert.objects.filter(rule_name="worker gone an hour").aexists(), (
            "gone for seconds, not for an hour"
        )
        assert await sync_to_async(send_due)() == 1
        [firing] = sink.wait_count(1)
        [notified] = firing.alerts()
        assert notified["event"] == "firing" and notified["alert"]["entity"] == HOSTNAME
        assert notified["alert"]["cluster"] == loop_slug()

        worker = start_worker(served_db)
        await answered(loop, present=True)
        await alert.arefresh_from_db()
        assert alert.state == "resolved" and alert.resolved_at is not None
        assert await sync_to_async(send_due)() == 1
        received = sink.wait_count(2)
        [resolved] = received[1].alerts()
        assert resolved["event"] == "resolved" and resolved["alert"]["entity"] == HOSTNAME
    finally:
        loop.sampler.close()
        stop_process(worker)


def worker_row(cluster: Cluster, state: str, seen: datetime) -> Consumer:
    return Consumer.objects.create(
        cluster=cluster,
        kind="celery",
        identity="w1@host",
        source="/tasks",
        state=state,
        first_seen=seen - timedelta(hours=1),
        last_seen=seen,
    )


def test_on_a_sampled_cluster_it_fires_past_its_for_seconds_and_resolves_on_return():
    """Workers a RabbitMQ sample found are evaluated with the cluster's sample."""
    cluster = Cluster.objects.create(slug="alerts-workers", kind="rabbitmq", name="W")
    AlertRule.objects.create(
        name="gone", kind=AlertRule.Kind.CELERY_WORKER_GONE, pattern="w1@*", for_seconds=30
    )
    now = timezone.now()
    row = worker_row(cluster, "active", now)
    sample = queue_sample(cluster.slug, {})
    evaluate(cluster.pk, cluster.slug, sample, now)
    assert not Alert.objects.exists(), "present"
    Consumer.objects.filter(pk=row.pk).update(state="gone")
    evaluate(cluster.pk, cluster.slug, sample, now + timedelta(seconds=20))
    assert not Alert.objects.exists(), "gone for 20 s of 30: nothing yet, not even pending"
    evaluate(cluster.pk, cluster.slug, sample, now + timedelta(seconds=31))
    alert = Alert.objects.get()
    assert alert.state == "firing" and alert.entity == "w1@host" and alert.value == 31
    assert evaluate_workers(cluster.pk, cluster.slug, now + timedelta(seconds=40)).resolved == 0
    Consumer.objects.filter(pk=row.pk).update(state="active", last_seen=now + timedelta(seconds=45))
    evaluate(cluster.pk, cluster.slug, sample, now + timedelta(seconds=45))
    alert.refresh_from_db()
    assert alert.state == "resolved"


def test_the_rules_page_says_what_a_worker_rule_waits_for(client, viewer):
    AlertRule.objects.create(
        name="gone", kind=AlertRule.Kind.CELERY_WORKER_GONE, pattern="w1@*", for_seconds=120
    )
    client.force_login(viewer)
    text = client.get("/alerts/rules/").content.decode()
    assert "Celery worker gone" in text and "not seen for over 2 min" in text
