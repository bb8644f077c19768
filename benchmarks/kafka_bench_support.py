"""Shared by the Kafka benchmarks: a real Daphne on a temp database, logged in over HTTP.

The dashboard is measured through its whole HTTP stack: a Daphne subprocess
serving ``dashboard.asgi`` (settings ``dashboard.settings``, watching only the
local Kafka), a temporary SQLite database with one viewer, and an httpx client
holding that viewer's session, with keep-alive.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
KAFKA = os.environ.get("MQB_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
SLUG = "local-kafka"
SERVER_PIDS: dict[int, int] = {}
"""id() of a client from :func:`dashboard` -> the pid of the Daphne it talks to"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def dashboard() -> Iterator[httpx.Client]:
    """A logged-in HTTP client of a fresh Daphne serving the dashboard."""
    with tempfile.TemporaryDirectory(prefix="mqb-bench-") as tmp:
        password = secrets.token_urlsafe(12)
        env = dict(os.environ)
        env.update(
            DJANGO_SETTINGS_MODULE="dashboard.settings",
            PYTHONPATH=str(ROOT),
            DATABASE_URL=f"sqlite:///{tmp}/db.sqlite3",
            MQB_DEFAULT_CLUSTERS="kafka",
            MQB_KAFKA_BOOTSTRAP_SERVERS=KAFKA,
            MQB_USER_PASSWORD=password,
            MQB_LOG_LEVEL="WARNING",
        )
        run = {"cwd": ROOT, "env": env, "check": True, "stdout": subprocess.DEVNULL}
        subprocess.run([PYTHON, "manage.py", "migrate", "--no-input", "-v0"], **run)  # type: ignore[call-overload]
        subprocess.run([PYTHON, "manage.py", "ensure_user", "bench", "--role", "viewer"], **run)  # type: ignore[call-overload]
        port = _free_port()
        log = open(Path(tmp) / "daphne.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                "dashboard.asgi:application",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait(port, process)
            with httpx.Client(base_url=base, timeout=60) as client:
                login = client.get("/login/")
                token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', login.text)
                assert token, "no CSRF token on the login page"
                done = client.post(
                    "/login/",
                    data={
                        "username": "bench",
                        "password": password,
                        "csrfmiddlewaretoken": token.group(1),
                    },
                    headers={"Referer": base + "/login/"},
                )
                assert done.status_code == 302, f"login failed: {done.status_code}"
                SERVER_PIDS[id(client)] = process.pid
                try:
                    yield client
                finally:
                    SERVER_PIDS.pop(id(client), None)
        finally:
            process.terminate()
            process.wait(timeout=15)
            log.close()


def _wait(port: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("Daphne exited before listening")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError("Daphne did not listen within 30 s")


def timed(call: Callable[[], object]) -> float:
    started = time.perf_counter()
    call()
    return (time.perf_counter() - started) * 1000


def cpu_seconds(pid: int) -> float:
    """User + system CPU of process ``pid`` (all its threads) so far, from /proc."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compare(
    pairs: dict[str, tuple[Callable[[int], object], Callable[[int], object]]],
    reps: int,
    warmup: int = 2,
    server_pid: int | None = None,
) -> dict[str, tuple[float, float]]:
    """Median ms of (dashboard, raw) per name, runs interleaved so load hits both alike.

    With ``server_pid`` (the dashboard's web process) its CPU from the start of each
    dashboard call to the end of the raw call after it (which the web process takes no
    part in, so work it finishes after answering is counted) is summed per name:
    :data:`CPU_MS` gets the mean ms of CPU per dashboard request. Clock ticks are
    10 ms, so only the sum over the runs means something.
    """
    samples: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in pairs}
    cpu: dict[str, float] = dict.fromkeys(pairs, 0.0)
    for rep in range(warmup + reps):
        for name, (ours, raw) in pairs.items():
            before = cpu_seconds(server_pid) if server_pid else 0.0
            ours_ms = timed(lambda: ours(rep))  # noqa: B023 - called right away
            raw_ms = timed(lambda: raw(rep))  # noqa: B023
            if rep >= warmup:
                samples[name][0].append(ours_ms)
                samples[name][1].append(raw_ms)
                if server_pid:
                    cpu[name] += cpu_seconds(server_pid) - before
    result = {}
    for name, (a, b) in samples.items():
        result[name] = (statistics.median(a), statistics.median(b))
        if server_pid:
            CPU_MS[name] = cpu[name] / reps * 1000
        used = f"   web CPU {CPU_MS[name]:6.2f} ms a request" if server_pid else ""
        print(
            f"{name:30s} dashboard median {result[name][0]:8.2f} ms   raw median"
            f" {result[name][1]:8.2f} ms   ratio {result[name][0] / max(result[name][1], 1e-9):.2f}"
            f"{used}"
            f"\n{'':30s} dashboard runs: {' '.join(f'{x:.0f}' for x in a)}"
            f"\n{'':30s} raw runs:       {' '.join(f'{x:.0f}' for x in b)}"
        )
    return result


CPU_MS: dict[str, float] = {}
"""Mean web-process CPU (ms) per dashboard request, by name, of the last :func:`compare`"""
