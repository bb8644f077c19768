"""Celery workers on a Redis broker (the dashboard's own) appear on the consumers page.

A real worker (``celery -A dashboard worker``) on the shared Redis, with a
hostname unique to the run; the collector's ``celery`` loop asks the workers
with Celery's ``active_queues`` broadcast. Other runs' workers on the same
Redis answer too: the tests only look for their own.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.conf import settings

from brokers.base import BrokerUnavailable
from brokers.base.metrics import queue_entity
from brokers.celery_workers import CeleryInspector, safe_url
from dashboard.collector.consumers_tracking import CELERY_MISSES_BEFORE_GONE, CeleryWorkersLoop
from dashboard.metrics.celery_workers import broker_slug
from dashboard.models import Consumer
from tests.conftest import ROOT, celery_worker_command, free_port, python_env, stop_process
from tests.settings import RUN_ID
from tests.support.metrics import base_env, collector_process, run_django, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.redis, pytest.mark.celery]

HOSTNAME = f"mqb-celery-{RUN_ID}@{socket.gethostname()}"


@pytest.fixture(scope="module")
def worker(redis_url, served_db):
    process = subprocess.Popen(
        celery_worker_command("--hostname", HOSTNAME, queues="tasks"),
        cwd=ROOT,
        env=python_env(DATABASE_URL=served_db["DATABASE_URL"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    inspector = CeleryInspector(settings.CELERY_BROKER_URL, timeout=1.0)
    try:
        wait_for(
            lambda: any(w.hostname == HOSTNAME for w in inspector.workers()),
            timeout=60,
            what="the worker to answer",
        )
        yield process
    finally:
        inspector.close()
        stop_process(process)


def test_it_hides_the_password_of_a_broker_url():
    assert safe_url("redis://:s3cret@redis.example:6380/2") == "redis://redis.example:6380/2"
    assert safe_url("rediss://user:pw@[::1]:6379/0") == "rediss://[::1]:6379/0"


def test_it_says_unavailable_for_a_broker_that_is_down():
    inspector = CeleryInspector(f"redis://127.0.0.1:{free_port()}/0", timeout=1.0)
    with pytest.raises(BrokerUnavailable) as caught:
        inspector.workers()
    assert "127.0.0.1" in caught.value.message
    inspector.close()


async def test_it_lists_a_worker_on_redis_by_hostname_and_queue(client, viewer, worker):
    loop = CeleryWorkersLoop(settings.CELERY_BROKER_URL)
    await loop.once()
    assert loop.ok
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    row = await Consumer.objects.select_related("cluster").aget(kind="celery", identity=HOSTNAME)
    assert row.source == queue_entity("", queue) and row.state == "active"
    assert row.cluster.slug == broker_slug(settings.CELERY_BROKER_URL)
    assert row.host == socket.gethostname()

    await asyncio.to_thread(client.force_login, viewer)
    response = await asyncio.to_thread(client.get, "/consumers/", {"kind": "celery"})
    # Names may wrap after their separators (<wbr>); read them whole.
    html = response.content.decode().replace("<wbr>", "")
    assert response.status_code == 200
    assert HOSTNAME in html, "the worker, by its hostname"
    assert f"queue {queue} <small" in html, "with the queue it consumes, not a broken link"
    assert "on redis://127.0.0.1:6379/0" in html
    api = (await asyncio.to_thread(client.get, "/api/consumers", {"q": HOSTNAME})).json()
    assert [(c["kind"], c["source"]) for c in api["consumers"]] == [("celery", queue)]
    # The bookkeeping row is no sampled cluster: no "last sample" is claimed for it.
    assert broker_slug(settings.CELERY_BROKER_URL) not in api["sampled_at"]


async def test_a_worker_is_gone_only_after_missing_several_answers(worker):
    loop = CeleryWorkersLoop(settings.CELERY_BROKER_URL)
    await loop.once()
    row = await Consumer.objects.aget(kind="celery", identity=HOSTNAME)
    # Pretend the worker stops answering (busy, or stopped): the broker is asked
    # through an inspector of a worker-less fake.
    loop.sampler.sample = lambda: ()  # type: ignore[method-assign]
    for _ in range(CELERY_MISSES_BEFORE_GONE - 1):
        await loop.once()
        await row.arefresh_from_db()
        assert row.state == "active", "one busy worker is not gone at once"
    await loop.once()
    await row.arefresh_from_db()
    assert row.state == "gone"


async def test_an_unreachable_broker_marks_nobody_gone(worker):
    loop = CeleryWorkersLoop(settings.CELERY_BROKER_URL)
    await loop.once()
    loop.sampler.inspector = CeleryInspector(f"redis://127.0.0.1:{free_port()}/0", timeout=0.5)
    for _ in range(CELERY_MISSES_BEFORE_GONE):
        await loop.once()
    assert loop.ok is False
    row = await Consumer.objects.aget(kind="celery", identity=HOSTNAME)
    assert row.state == "active", "unknown is not gone"
    assert row.last_seen > datetime.now(UTC) - timedelta(minutes=1)


def test_the_collector_process_records_the_worker(worker, served_db):
    env = base_env(served_db, MQB_METRICS_CELERY_INTERVAL="1")
    with collector_process(env, "--only", "celery", log_name=f"celery-{uuid.uuid4().hex[:6]}"):
        found = wait_for(
            lambda: run_django(
                env,
                "import json; from dashboard.models import Consumer; print(json.dumps(list("
                f"Consumer.objects.filter(kind='celery', identity={HOSTNAME!r}, state='active')"
                ".values_list('cluster__slug', 'source'))))",
            ),
            timeout=40,
            what="the collector to record the worker",
        )
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    assert [broker_slug(settings.CELERY_BROKER_URL), queue_entity("", queue)] in found
