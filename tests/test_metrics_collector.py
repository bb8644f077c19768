"""The collector as a real process: stores, pushes watched entities every second,
says "unavailable since" when a broker goes away (and keeps sampling the others),
and leaves an honest gap in the history when it is restarted."""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from channels.testing import WebsocketCommunicator

from brokers.base import ClusterConfig, Secret
from brokers.base.metrics import queue_entity
from dashboard.asgi import application
from tests.conftest import KAFKA
from tests.settings import RUN_ID
from tests.support.metrics import (
    HOST,
    ORIGIN,
    TcpProxy,
    base_env,
    clusters_file,
    collector_process,
    declare,
    log_tail,
    publish,
    run_django,
    session_cookie,
    unique,
)
from tests.support.served_db import query

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.redis,
    pytest.mark.rabbitmq,
    pytest.mark.kafka,
]


async def socket_for(client, user, kind: str, **params: str) -> WebsocketCommunicator:
    cookie = await asyncio.to_thread(session_cookie, client, user)
    url = f"/ws/metrics/{kind}/?{urlencode(params)}"
    communicator = WebsocketCommunicator(application, url, headers=[HOST, ORIGIN, cookie])
    connected, code = await communicator.connect(timeout=10)
    assert connected, code
    hello = await communicator.receive_json_from(timeout=5)
    assert hello["type"] == "metrics.hello"
    return communicator


async def next_message(
    communicator: WebsocketCommunicator, wanted, seconds: float, process=None
) -> dict[str, Any]:
    """The next message for which ``wanted(message)`` is true, within ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            tail = log_tail(process.log_path) if process is not None else ""
            raise AssertionError(f"no matching message within {seconds} s; collector log:\n{tail}")
        try:
            message = await communicator.receive_json_from(timeout=left)
        except TimeoutError:
            continue
        if wanted(message):
            return dict(message)


def heartbeats(served_db: dict[str, str], slug: str) -> int:
    rows = query(
        served_db["DATABASE_URL"],
        "SELECT COUNT(*) FROM dashboard_throughputsample WHERE entity_type = 'cluster'"
        " AND entity = %s AND resolution = 'raw'",
        (slug,),
    )
    return int(rows[0][0])


async def wait_heartbeats(served_db, slug: str, count: int, process, seconds: float = 30) -> int:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = await asyncio.to_thread(heartbeats, served_db, slug)
        if found >= count:
            return found
        await asyncio.sleep(0.3)
    raise AssertionError(f"{slug}: fewer than {count} samples; log:\n{log_tail(process.log_path)}")


async def test_it_pushes_a_watched_queue_every_second_and_stores_it(
    client, viewer, served_db, redis_url, rabbitmq_vhost
):
    name = unique("watched")
    await asyncio.to_thread(declare, rabbitmq_vhost, name)
    env = base_env(served_db)
    with collector_process(env, "--only", "metrics", "--interval", "5") as process:
        ws = await socket_for(
            client, viewer, "queue", cluster="local-rabbitmq", vhost=rabbitmq_vhost, name=name
        )

        def is_point(m: dict[str, Any]) -> bool:
            return bool(m["type"] == "metrics.point")

        points = [await next_message(ws, is_point, 30, process)]
        points += [await next_message(ws, is_point, 5, process) for _ in range(3)]
        assert {p["step"] for p in points} == {1.0}, "watched: sampled every second"
        assert points[-1]["time"] - points[0]["time"] < 5.0, "four points within one interval"
        assert points[0]["entity"] == queue_entity(rabbitmq_vhost, name)
        await asyncio.to_thread(publish, rabbitmq_vhost, name, 7)
        moved = await next_message(
            ws, lambda m: is_point(m) and m["values"]["depth"] == 7, 25, process
        )
        assert moved["values"]["ready"] == 7 and moved["values"]["consumers"] == 0
        await ws.disconnect()
    stored = await asyncio.to_thread(
        run_django,
        env,
        "import json; from dashboard.models import ThroughputSample as T; "
        f"print(json.dumps(T.objects.filter(entity={queue_entity(rabbitmq_vhost, name)!r})"
        ".count()))",
    )
    assert stored >= 1, "the full samples were stored"


@pytest.fixture
def proxies():
    amqp, management = TcpProxy(5672), TcpProxy(15672)
    amqp.start()
    management.start()
    yield amqp, management
    amqp.stop()
    management.stop()


async def test_a_broker_that_goes_away_is_unavailable_within_two_intervals_and_recovers(
    client, viewer, served_db, redis_url, rabbitmq_vhost, proxies, tmp_path, use_clusters
):
    amqp, management = proxies
    rabbit_slug, kafka_slug = f"fault-r-{RUN_ID}", f"fault-k-{RUN_ID}"
    vhost = quote(rabbitmq_vhost, safe="")
    path = clusters_file(
        tmp_path,
        f"""
[[cluster]]
slug = "{rabbit_slug}"
kind = "rabbitmq"
amqp_url = "amqp://127.0.0.1:{amqp.port}/{vhost}"
management_url = "http://127.0.0.1:{management.port}"
username = "guest"
password_env = "FAULT_RABBIT_PASSWORD"
timeout = 4

[[cluster]]
slug = "{kafka_slug}"
kind = "kafka"
bootstrap_servers = "{KAFKA}"
timeout = 2
""",
    )
    use_clusters(
        ClusterConfig(slug=rabbit_slug, kind="rabbitmq", amqp_url="amqp://x/", management_url="x"),
        ClusterConfig(slug=kafka_slug, kind="kafka", bootstrap_servers=KAFKA, password=Secret()),
    )
    interval = 3.0
    env = base_env(served_db, MQB_CLUSTERS_FILE=path, FAULT_RABBIT_PASSWORD="guest")
    with collector_process(env, "--interval", str(interval)) as process:
        rabbit = await socket_for(client, viewer, "cluster", cluster=rabbit_slug)
        kafka = await socket_for(client, viewer, "cluster", cluster=kafka_slug)

        def sampled(m: dict[str, Any]) -> bool:
            return bool(m["type"] == "metrics.cluster" and m["ok"] is True)

        await next_message(rabbit, sampled, 40, process)
        await next_message(kafka, sampled, 20, process)

        amqp.stop()
        management.stop()
        stopped = time.monotonic()
        down = await next_message(
            rabbit, lambda m: m["type"] == "metrics.status" and m["ok"] is False, 30, process
        )
        noticed = time.monotonic() - stopped
        assert noticed <= 2 * interval + 1, f"noticed after {noticed:.1f} s"
        assert down["down_since"] and down["down_since"] >= time.time() - 30
        assert down["message"]
        # Meanwhile the other cluster keeps being sampled, on its own schedule.
        for _ in range(2):
            await next_message(kafka, sampled, 2 * interval + 2, process)

        amqp.start()
        management.start()
        await next_message(rabbit, sampled, 4 * interval + 10, process)
        back = await next_message(
            rabbit, lambda m: m["type"] == "metrics.cluster", 2 * interval + 2, process
        )
        assert back["ok"] and back["down_since"] is None
        await rabbit.disconnect()
        await kafka.disconnect()


async def test_a_restarted_collector_leaves_a_gap_in_the_history(served_db, redis_url, tmp_path):
    slug = f"gap-k-{RUN_ID}"
    path = clusters_file(
        tmp_path,
        f'[[cluster]]\nslug = "{slug}"\nkind = "kafka"\nbootstrap_servers = "{KAFKA}"\n',
    )
    env = base_env(served_db, MQB_CLUSTERS_FILE=path)
    with collector_process(env, "--only", "metrics", "--interval", "1") as process:
        before = await wait_heartbeats(served_db, slug, 3, process)
    await asyncio.sleep(4)  # the collector is down for several intervals
    with collector_process(env, "--only", "metrics", "--interval", "1") as process:
        await wait_heartbeats(served_db, slug, before + 3, process)
    history = await asyncio.to_thread(
        run_django,
        env,
        "import json; from dashboard.metrics.history import get_history; "
        f"h = get_history({slug!r}, 'cluster', {slug!r}, '1h'); "
        "print(json.dumps({'t': h.times, 'members': h.series['consumers'], 'step': h.step}))",
    )
    depth = history["members"]
    assert history["step"] == pytest.approx(1.0, abs=0.3)
    assert None in depth, "the restart is a gap"
    gap = depth.index(None)
    assert 0 < gap < len(depth) - 1, "samples on both sides of it"
    assert depth[gap - 1] is not None and depth[gap + 1] is not None
