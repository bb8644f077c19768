"""A real Celery worker process, on the real Redis, runs the dashboard's tasks."""

from __future__ import annotations

import subprocess

import pytest

from dashboard.jobs.tasks import ping
from tests.conftest import ROOT, celery_worker_command, python_env, stop_process

pytestmark = [pytest.mark.celery, pytest.mark.redis]


@pytest.fixture(scope="module")
def celery_worker_process(redis_url, served_db):

    process = subprocess.Popen(
        celery_worker_command(),
        cwd=ROOT,
        env=python_env(DATABASE_URL=served_db["DATABASE_URL"]),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    yield process
    stop_process(process)


def test_a_task_round_trips_through_a_real_worker(celery_worker_process):
    result = ping.delay("hello")
    assert result.get(timeout=60) == "pong:hello"
    assert celery_worker_process.poll() is None
