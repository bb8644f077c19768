"""scripts/supervise.py, which `make demo` runs instead of honcho: real processes, real signals."""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT

SUPERVISE = ROOT / "scripts" / "supervise.py"
SLEEPER = "{python} -u -c \"import time; print('{name} is up'); time.sleep(600)\""
# A real segmentation fault, as librdkafka gave Daphne on a lone surrogate.
CRASHER = "{python} -u -c \"import ctypes; print('crasher about to crash'); ctypes.string_at(0)\""


class Run:
    """The supervisor as a process, its output collected line by line."""

    def __init__(self, procfile: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(SUPERVISE), "-f", str(procfile), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_for(self, pattern: str, count: int = 1, seconds: float = 30) -> list[re.Match[str]]:
        deadline = time.monotonic() + seconds
        while True:
            found = [m for m in map(re.compile(pattern).search, list(self.lines)) if m]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"no {pattern!r} in:\n" + "\n".join(self.lines))
            time.sleep(0.05)

    def pid_of(self, name: str, nth: int = 1) -> int:
        return int(self.wait_for(rf"system +\| {name} started \(pid (\d+)\)", nth)[nth - 1][1])

    def text(self) -> str:
        return "\n".join(self.lines)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is not alive: the supervisor reaps what it started.
    return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"


@pytest.fixture
def procfile(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "Procfile"
    python = sys.executable
    path.write_text(
        "# two sleepers\n"
        f"alpha: {SLEEPER.format(python=python, name='alpha')}\n"
        "\n"
        f"beta: {SLEEPER.format(python=python, name='beta')}\n"
    )
    yield path


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        if run.process.poll() is None:
            run.process.terminate()
            run.process.wait(timeout=30)


def test_it_names_a_killed_process_restarts_it_and_keeps_the_others(procfile, runs, tmp_path):
    run = Run(procfile, "--backoff", "0.2", "--log-dir", str(tmp_path / "log"))
    runs.append(run)
    run.wait_for(r"alpha +\| alpha is up")
    run.wait_for(r"beta +\| beta is up")
    alpha, beta = run.pid_of("alpha"), run.pid_of("beta")

    os.kill(alpha, signal.SIGKILL)

    run.wait_for(
        rf"alpha \(pid {alpha}\) exited with signal 9 \(SIGKILL\), restarting in 0.2 s"
        r" \(restart 1 of at most 5 within 60 s\)"
    )
    run.wait_for(r"last line of alpha .*:")
    run.wait_for(r"  alpha> alpha is up")
    restarted = run.pid_of("alpha", 2)
    run.wait_for(r"alpha +\| alpha is up", 2)
    assert restarted != alpha and alive(restarted)
    assert alive(beta) and run.text().count("beta started") == 1
    assert (tmp_path / "log" / "alpha.log").read_text().count("alpha is up") == 2

    run.process.send_signal(signal.SIGINT)  # Ctrl-C
    assert run.process.wait(timeout=30) == 0
    run.reader.join(timeout=5)
    assert "SIGINT received" in run.text() and "stopping alpha, beta" in run.text()
    assert not alive(restarted) and not alive(beta)


def test_it_stops_everything_with_a_clear_message_when_a_process_keeps_crashing(procfile, runs):
    procfile.write_text(
        procfile.read_text() + f"crasher: {CRASHER.format(python=sys.executable)}\n"
    )
    run = Run(procfile, "--backoff", "0.1", "--max-restarts", "2")
    runs.append(run)
    beta = run.pid_of("beta")

    assert run.process.wait(timeout=60) == 1
    run.reader.join(timeout=5)
    text = run.text()
    assert "crasher (pid" in text and "exited with signal 11 (SIGSEGV), restarting in 0.1 s" in text
    assert "exited with signal 11 (SIGSEGV), restarting in 0.2 s" in text
    assert re.search(
        r"crasher \(pid \d+\) exited with signal 11 \(SIGSEGV\); it died 3 times within 60 s,"
        r" so it is not restarted\. Stopping everything\.",
        text,
    ), text
    assert "  crasher> crasher about to crash" in text
    assert "stopping alpha, beta" in text
    assert not alive(beta)


def test_it_stops_every_process_on_sigterm(procfile, runs):
    run = Run(procfile)
    runs.append(run)
    alpha, beta = run.pid_of("alpha"), run.pid_of("beta")
    run.wait_for(r"beta +\| beta is up")

    run.process.terminate()

    assert run.process.wait(timeout=30) == 0
    run.reader.join(timeout=5)
    assert "SIGTERM received" in run.text()
    assert "alpha exited with signal 15 (SIGTERM)" in run.text()
    assert not alive(alpha) and not alive(beta)


def test_it_reads_the_projects_procfile_at_run_time():
    spec = importlib.util.spec_from_file_location("supervise", SUPERVISE)
    assert spec is not None and spec.loader is not None
    supervise = importlib.util.module_from_spec(spec)
    sys.modules["supervise"] = supervise  # its dataclasses look their module up
    try:
        spec.loader.exec_module(supervise)
    finally:
        del sys.modules["supervise"]
    names = [entry.name for entry in supervise.read_procfile(ROOT / "Procfile")]
    assert names[:3] == ["web", "collector", "worker"]
    demo = (ROOT / "scripts" / "demo.sh").read_text()
    assert "scripts/supervise.py -f Procfile" in demo and 'honcho" start' not in demo
