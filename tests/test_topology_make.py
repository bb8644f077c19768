"""`make topology`'s script as it runs: every line of ops/Procfile.prod behind nginx, then down.

``scripts/topology.sh`` runs with a PostgreSQL database of its own
(``DATABASE_URL``), a state dir under ``var/`` and free ports; it watches only
this run's RabbitMQ vhost (one cluster), sampled every 2 s. The login it prints
works through nginx, the collectors' health checks reach websockets on both
Daphne, and ``scripts/topology.sh down`` stops every process and nginx.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.settings import RUN_ID
from tests.support.served_db import postgres_database, served_env
from tests.support.topology import (
    ROOT,
    WebSocket,
    access_log_upstreams,
    free_port,
    listening_pid,
    port_open,
)

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.celery]


@dataclass
class Running:
    process: subprocess.Popen[bytes]
    env: dict[str, str]
    output: Path
    url: str
    web_ports: list[int]
    state: Path


def wait_until(check: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: not within {seconds} s")


@pytest.fixture(scope="module")
def topology(rabbitmq_vhost) -> Iterator[Running]:
    state = ROOT / "var" / f"test-make-topology-{RUN_ID}"
    shutil.rmtree(state, ignore_errors=True)
    (state / "log").mkdir(parents=True)
    nginx_port, web_ports = free_port(), [free_port(), free_port()]
    env = served_env(
        postgres_database("make_topology"),
        MQB_STATE_DIR=str(state),
        MQB_TOPOLOGY_PORT=str(nginx_port),
        MQB_WEB1_PORT=str(web_ports[0]),
        MQB_WEB2_PORT=str(web_ports[1]),
        MQB_DEFAULT_CLUSTERS="rabbitmq",
        MQB_RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:5672/{quote(rabbitmq_vhost, safe='')}",
        MQB_METRICS_RABBITMQ_VHOSTS=rabbitmq_vhost,
        MQB_DLQ_DISCOVERY_VHOSTS=rabbitmq_vhost,
        MQB_SAMPLE_INTERVAL="2",
    )
    output = state / "topology.out"
    with open(output, "wb") as out:
        process = subprocess.Popen(
            [str(ROOT / "scripts" / "topology.sh")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Running(process, env, output, f"http://127.0.0.1:{nginx_port}", web_ports, state)
    try:
        wait_until(
            lambda: process.poll() is not None or all(port_open(p) for p in web_ports),
            120,
            "the web processes listening",
        )
        assert process.poll() is None, output.read_text()[-3000:]
        yield running
    finally:
        if process.poll() is None:
            subprocess.run([str(ROOT / "scripts" / "topology.sh"), "down"], cwd=ROOT, env=env)
            process.wait(timeout=60)
        shutil.rmtree(state / "staticfiles", ignore_errors=True)


def printed_login(output: Path) -> tuple[str, str]:
    match = re.search(r"log in as\s+(\S+) / (\S+)", output.read_text())
    assert match, output.read_text()[-2000:]
    return match[1], match[2]


def test_it_prints_the_url_and_a_login_that_works_through_nginx(topology):
    text = topology.output.read_text()
    assert f"is starting at  {topology.url}/" in text
    username, password = printed_login(topology.output)
    with httpx.Client(base_url=topology.url, timeout=30) as client:
        client.get("/login/")
        response = client.post(
            "/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Origin": topology.url},
        )
        assert response.status_code == 302 and response.headers["location"] == "/"
        assert client.get("/").status_code == 200


def test_the_collectors_health_checks_reach_websockets_on_both_daphne(topology):
    username, password = printed_login(topology.output)
    access_log = topology.state / "log" / "nginx-access.log"
    start = access_log.stat().st_size
    with httpx.Client(base_url=topology.url, timeout=30) as client:
        client.get("/login/")
        client.post(
            "/login/",
            data={
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": client.cookies["csrftoken"],
            },
            headers={"Origin": topology.url},
        )
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    port = int(topology.url.rsplit(":", 1)[1])
    sockets = [
        WebSocket(port, "/ws/overview/", cookie=cookie, origin=topology.url) for _ in range(2)
    ]
    try:
        assert [s.status for s in sockets] == [101, 101]
        for socket_ in sockets:
            event = socket_.receive_json(timeout=60)
            assert event["type"] == "cluster.health", event
            assert event["health"]["slug"] == "local-rabbitmq" and event["health"]["ok"], event
    finally:
        for socket_ in sockets:
            socket_.close()
    upstreams = wait_until(
        lambda: {up for _, _, up in access_log_upstreams(access_log, "/ws/", start)},
        10,
        "the websockets in the access log",
    )
    assert upstreams == {f"127.0.0.1:{p}" for p in topology.web_ports}


def test_topology_down_stops_every_process_and_nginx(topology):
    pids = [listening_pid(p) for p in topology.web_ports]
    done = subprocess.run(
        [str(ROOT / "scripts" / "topology.sh"), "down"],
        cwd=ROOT,
        env=topology.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert topology.process.wait(timeout=60) == 0
    nginx_port = int(topology.url.rsplit(":", 1)[1])
    assert not port_open(nginx_port)
    assert not any(port_open(p) for p in topology.web_ports)
    assert not any(Path(f"/proc/{pid}").exists() for pid in pids)
    text = topology.output.read_text()
    for name in ("web1", "web2", "collector1", "collector2", "tasks", "jobs", "beat"):
        assert f"{name} started" in text and re.search(rf"{name} exited with code 0", text), name
