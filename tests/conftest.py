"""Fixtures for the real services started by ``ops/up.sh`` (``make test`` does it).

Isolation on shared services: a fresh RabbitMQ vhost per test run (deleted at
the end), unique Kafka topic and group names, a Redis channel prefix and a
Celery queue named after the run id (``tests/settings.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from importlib import import_module
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from brokers.base import ClusterConfig, Secret
from tests.settings import RUN_ID

ROOT = Path(__file__).resolve().parent.parent
MGMT = "http://127.0.0.1:15672"
GUEST = ("guest", "guest")
KAFKA = "127.0.0.1:9092"


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _require(port: int, what: str) -> None:
    if not _port_open(port):
        pytest.exit(
            f"{what} is not running on 127.0.0.1:{port}; `make test` starts it (or run ops/up.sh)",
            returncode=3,
        )


def free_port() -> int:
    """A port nothing listens on, for 'broker is down' tests."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker: Any) -> Iterator[None]:
    """pytest-django's test database; on PostgreSQL, at the end, the sessions threads
    left open on it are ended first: a database in use cannot be dropped."""
    yield
    from django.db import connection

    if connection.vendor != "postgresql":
        return
    with django_db_blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.fixture(autouse=True)
def _role_groups(request: pytest.FixtureRequest) -> None:
    """Tests that use the database find the role groups there, whichever test ran
    before them in this process (a transactional test's flush drops them)."""
    names = set(request.fixturenames)
    if request.node.get_closest_marker("django_db") is None and not (
        names & {"db", "transactional_db"}
    ):
        return
    request.getfixturevalue("_django_db_helper")
    _restore_roles()


# Seconds the tasks an async test leaves behind get to end once cancelled.
TASKS_LEFT_GRACE = 20.0


@pytest.fixture(autouse=True)
def _async_tests_leave_no_task(request: pytest.FixtureRequest) -> None:
    """Async tests end with every task they started ended (see ``_tasks_left_end``)."""
    if inspect.iscoroutinefunction(getattr(request, "function", None)):
        request.getfixturevalue("_tasks_left_end")


@pytest.fixture
async def _tasks_left_end() -> AsyncIterator[None]:
    """After an async test, cancel the tasks it left (refused consumers, readers) and
    fail with their names and stacks if one is still running after the grace, instead
    of the event loop's close waiting on it until pytest-timeout. Stuck tasks are
    dropped from the loop's task list so that it can close."""
    yield
    me = asyncio.current_task()
    left = [task for task in asyncio.all_tasks() if task is not me and not task.done()]
    if not left:
        return
    for task in left:
        task.cancel()
    _, stuck = await asyncio.wait(left, timeout=TASKS_LEFT_GRACE)
    if not stuck:
        return
    described = []
    for task in stuck:
        where = "\n      ".join(_awaiting(task))
        described.append(f"{task.get_name()} {task.get_coro()!r}\n      {where}")
        asyncio.tasks._unregister_task(task)
    pytest.fail(
        f"{len(stuck)} task(s) still running {TASKS_LEFT_GRACE:.0f} s after being cancelled:\n  "
        + "\n  ".join(described),
        pytrace=False,
    )


def _awaiting(task: asyncio.Task[Any]) -> list[str]:
    """Where ``task``'s coroutine and what it awaits are, outermost first."""
    frames = []
    coro: Any = task.get_coro()
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is None:
            break
        frames.append(f"{frame.f_code.co_filename}:{frame.f_lineno} {frame.f_code.co_name}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return frames


def _restore_roles() -> None:
    """The role groups with their grants, as the data migrations ``0002_roles`` and
    ``0009_role_permissions`` leave them (a flush keeps permissions, not groups)."""
    from django.contrib.auth.models import Group, Permission

    roles = ("viewer", "operator", "admin")
    if Group.objects.filter(name__in=roles).count() == len(roles):
        return
    grants: dict[str, list[tuple[str, str]]] = import_module(
        "dashboard.migrations.0009_role_permissions"
    ).GRANTS
    wanted = {name for names in grants.values() for name in names}
    found = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.select_related("content_type").filter(
            codename__in=[codename for _, codename in wanted]
        )
    }
    for role in roles:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.add(*(found[name] for name in grants.get(role, ()) if name in found))


@pytest.fixture(scope="session")
def rabbitmq_vhost() -> Iterator[str]:
    _require(5672, "RabbitMQ")
    vhost = f"mqb-test-{RUN_ID}"
    path = quote(vhost, safe="")
    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
        http.put(f"/api/vhosts/{path}").raise_for_status()
        http.put(
            f"/api/permissions/{path}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
        yield vhost
        http.delete(f"/api/vhosts/{path}")


@pytest.fixture(scope="session")
def rabbitmq_config(rabbitmq_vhost: str) -> ClusterConfig:
    return ClusterConfig(
        slug="test-rabbitmq",
        kind="rabbitmq",
        name="Test RabbitMQ",
        amqp_url=f"amqp://127.0.0.1:5672/{quote(rabbitmq_vhost, safe='')}",
        management_url=MGMT,
        username="guest",
        password=Secret("guest"),
        timeout=4.0,
    )


@pytest.fixture(scope="session")
def kafka_config() -> ClusterConfig:
    _require(9092, "Kafka")
    return ClusterConfig(
        slug="test-kafka", kind="kafka", name="Test Kafka", bootstrap_servers=KAFKA, timeout=4.0
    )


@pytest.fixture
def unique_name() -> str:
    """A Kafka topic or group name no other test or run uses."""
    return f"mqb-test-{RUN_ID}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    _require(6379, "Redis")
    return "redis://127.0.0.1:6379/0"


@pytest.fixture
def use_clusters(
    settings, monkeypatch, rabbitmq_config: ClusterConfig, kafka_config: ClusterConfig
):
    """Point the dashboard's services at the given cluster configs (default: the test ones)."""
    from dashboard.core import clusters as cluster_services

    def apply(*configs: ClusterConfig) -> None:
        chosen = configs or (rabbitmq_config, kafka_config)
        monkeypatch.setattr(cluster_services, "get_cluster_configs", lambda: tuple(chosen))

    apply()
    return apply


def broken(config: ClusterConfig, **changes: object) -> ClusterConfig:
    return replace(config, **changes)  # type: ignore[arg-type]


# -- users -------------------------------------------------------------------


@pytest.fixture
def make_user(django_user_model):
    from django.contrib.auth.models import Group

    def make(username: str, role: str = "viewer", password: str = "pw-for-tests"):
        user = django_user_model.objects.create_user(username=username, password=password)
        user.groups.add(Group.objects.get_or_create(name=role)[0])
        if role == "admin":
            user.is_staff = True
            user.is_superuser = True
            user.save()
        return user

    return make


@pytest.fixture
def viewer(make_user):
    return make_user("vera", "viewer")


@pytest.fixture
def operator(make_user):
    return make_user("otto", "operator")


@pytest.fixture
def admin_user_(make_user):
    return make_user("ada", "admin")


# -- processes ---------------------------------------------------------------


def celery_worker_command(*extra: str, queues: str = "all") -> list[str]:
    """The dashboard's Celery worker on this run's own queues (``extra``: e.g. -n NAME).

    ``queues``: "tasks" (short tasks, one at a time, as the Procfile's ``worker``),
    "jobs" (long jobs, a thread each, as its ``jobs``) or "all" (both in one process).
    """
    from django.conf import settings

    from dashboard.celery import jobs_queue

    tasks = settings.CELERY_TASK_DEFAULT_QUEUE
    names, pool = {
        "tasks": (tasks, ["--pool=solo"]),
        "jobs": (jobs_queue(), ["--pool=threads", "--concurrency=4"]),
        "all": (f"{tasks},{jobs_queue()}", ["--pool=threads", "--concurrency=4"]),
    }[queues]
    return [
        PYTHON, "-m", "celery", "-A", "dashboard", "worker", *pool, "--loglevel=INFO",
        "-Q", names, "--without-mingle", "--without-gossip", *extra,
    ]  # fmt: skip


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not ended within ``timeout`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_port(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening")
        if _port_open(port):
            return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listened on {port} within {timeout} s")


def python_env(**extra: str) -> dict[str, str]:
    # MQB_TEST_DB places this run's test database; a process a test starts uses the
    # database its DATABASE_URL names (by default the SQLite file of its state dir;
    # tests.support.served_db makes one of the kind MQB_TEST_DB names).
    env = {k: v for k, v in os.environ.items() if k != "MQB_TEST_DB"}
    env.update({"DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)})
    env.update(extra)
    return env


PYTHON = sys.executable


# -- a served dashboard: its own database, real processes ---------------------

# The ``served_db`` fixture (the environment of the processes tests start, with a
# database of their own) lives beside the helpers it uses, which import this module.
pytest_plugins = ["tests.support.served_db"]


@pytest.fixture(scope="session")
def daphne_url(daphne: tuple[str, subprocess.Popen[bytes]]) -> str:
    return daphne[0]


@pytest.fixture(scope="session")
def daphne(
    served_db, redis_url, rabbitmq_vhost, kafka_config
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The real ASGI app under Daphne, as `make demo` runs it: its URL and its process."""
    port = free_port()
    log = open(ROOT / "var" / "log" / f"test-daphne-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
        cwd=ROOT,
        env=served_db,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}", process
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def dlq_daphne(served_db, redis_url, rabbitmq_vhost, tmp_path_factory):
    """Daphne watching test-rabbitmq (this run's vhost) and test-kafka: its URL and env."""
    clusters = tmp_path_factory.mktemp("dlq-browser") / "clusters.toml"
    clusters.write_text(
        "[[cluster]]\n"
        'slug = "test-rabbitmq"\n'
        'kind = "rabbitmq"\n'
        'name = "Test RabbitMQ"\n'
        f'amqp_url = "amqp://127.0.0.1:5672/{quote(rabbitmq_vhost, safe="")}"\n'
        'management_url = "http://127.0.0.1:15672"\n'
        'username = "guest"\n'
        'password_env = "MQB_TEST_BROWSER_DLQ_PASSWORD"\n'
        "[[cluster]]\n"
        'slug = "test-kafka"\n'
        'kind = "kafka"\n'
        'name = "Test Kafka"\n'
        'bootstrap_servers = "127.0.0.1:9092"\n'
    )
    env = {
        **served_db,
        "MQB_CLUSTERS_FILE": str(clusters),
        "MQB_TEST_BROWSER_DLQ_PASSWORD": "guest",
    }
    port = free_port()
    log = open(ROOT / "var" / "log" / f"test-daphne-dlq-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}", env
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


# -- a real browser: Debian's Chromium, driven by Playwright ---------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium for a test module (never `playwright install`: Debian's own)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield chromium
        chromium.close()
