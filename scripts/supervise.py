#!/usr/bin/env python3
"""Run every process of a Procfile, say clearly when one dies, and restart it.

``make demo`` uses this instead of honcho: honcho stops every other process
when one dies, and says so in a line that scrolls away among the others' output.
Here a process that exits is named with its exit code or signal and the last
lines it printed, then restarted after a pause that doubles with each restart
(1, 2, 4 ... at most ``--max-backoff`` seconds). A process that dies more than
``--max-restarts`` times within ``--window`` seconds is not restarted: then
everything is stopped with a message saying why, and the exit status is 1.
Ctrl-C, SIGTERM or SIGHUP stops every process (SIGTERM to its process group,
SIGKILL after ``--stop-timeout`` seconds).

The Procfile is read when the supervisor starts (``name: command`` lines;
blank lines and ``#`` comments are skipped); commands run under ``/bin/sh``,
so ``${VAR:-default}`` works as with honcho. Output is prefixed with the time
and the process name, as honcho does, and with ``--log-dir`` also appended to
``<log-dir>/<name>.log``.

In production, run each process under systemd (README, "Running in
production") rather than this script.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

TAIL_LINES = 15
_OPERATOR = re.compile(r"[;&|<>()]+")


def is_simple(command: str) -> bool:
    """No shell operator outside quotes: the shell can ``exec`` it, so the pid we
    watch and signal is the process itself and a crash shows as its own signal."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return not any(_OPERATOR.fullmatch(token) for token in lexer)
    except ValueError:  # unbalanced quotes: let the shell say so
        return False


@dataclass
class Entry:
    name: str
    command: str


@dataclass
class Process:
    entry: Entry
    popen: subprocess.Popen[bytes] | None = None
    reader: threading.Thread | None = None
    tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=TAIL_LINES)
    )
    deaths: collections.deque[float] = field(default_factory=collections.deque)
    restart_at: float | None = None
    started_at: float = 0.0


def read_procfile(path: Path) -> list[Entry]:
    entries: list[Entry] = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, command = line.partition(":")
        name, command = name.strip(), command.strip()
        if not sep or not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or not command:
            raise SystemExit(f"{path}:{number}: expected 'name: command', got {raw!r}")
        if any(e.name == name for e in entries):
            raise SystemExit(f"{path}:{number}: {name!r} is defined twice")
        entries.append(Entry(name, command))
    if not entries:
        raise SystemExit(f"{path}: no processes")
    return entries


def describe_exit(code: int) -> str:
    """'exited with code 1' or 'exited with signal 11 (SIGSEGV)' from a Popen returncode."""
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = "unknown signal"
        return f"exited with signal {-code} ({name})"
    if code > 128 and code - 128 < 65:
        # A shell that ran the command (not exec'd) reports a signal as 128 + N.
        try:
            return (
                f"exited with code {code} (signal {code - 128}, {signal.Signals(code - 128).name})"
            )
        except ValueError:
            pass
    return f"exited with code {code}"


class Supervisor:
    def __init__(
        self,
        entries: list[Entry],
        *,
        max_restarts: int,
        window: float,
        backoff: float,
        max_backoff: float,
        stop_timeout: float,
        log_dir: Path | None,
        out: IO[str] = sys.stdout,
    ) -> None:
        self.processes = [Process(e) for e in entries]
        self.max_restarts = max_restarts
        self.window = window
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.stop_timeout = stop_timeout
        self.log_dir = log_dir
        self.out = out
        self.width = max(len("system"), *(len(e.name) for e in entries))
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.stopped_by = ""

    def say(self, name: str, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        with self.lock, contextlib.suppress(OSError):  # a closed terminal must not stop us
            self.out.write(f"{stamp} {name:<{self.width}} | {line}\n")
            self.out.flush()

    def system(self, line: str) -> None:
        self.say("system", line)

    def start(self, process: Process) -> None:
        command = process.entry.command
        if is_simple(command):
            command = "exec " + command
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        process.tail.clear()
        process.popen = subprocess.Popen(  # noqa: S603 (the operator's own Procfile)
            ["/bin/sh", "-c", command],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            # Its own process group: Ctrl-C reaches the supervisor only, which
            # then stops each group in order; a dead process's leftovers can be killed.
            start_new_session=True,
        )
        process.started_at = time.monotonic()
        process.restart_at = None
        process.reader = threading.Thread(
            target=self._relay, args=(process, process.popen), daemon=True
        )
        process.reader.start()
        self.system(f"{process.entry.name} started (pid {process.popen.pid})")

    def _relay(self, process: Process, popen: subprocess.Popen[bytes]) -> None:
        log = None
        if self.log_dir is not None:
            log = open(self.log_dir / f"{process.entry.name}.log", "a", encoding="utf-8")  # noqa: SIM115
        try:
            assert popen.stdout is not None
            for raw in popen.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                process.tail.append(line)
                self.say(process.entry.name, line)
                if log is not None:
                    log.write(line + "\n")
                    log.flush()
        finally:
            if log is not None:
                log.close()

    def run(self) -> int:
        try:
            return self._run()
        finally:
            self.stop_all()  # even after an error of our own: never leave orphans

    def _run(self) -> int:
        for process in self.processes:
            self.start(process)
        while not self.stopping.is_set():
            now = time.monotonic()
            for process in self.processes:
                popen = process.popen
                if process.restart_at is not None:
                    if now >= process.restart_at:
                        self.start(process)
                    continue
                if popen is None or popen.poll() is None:
                    continue
                if not self._died(process, popen, now):
                    return 1
            self.stopping.wait(0.2)
        self.system(f"{self.stopped_by or 'stop'} received")
        return 0

    def _died(self, process: Process, popen: subprocess.Popen[bytes], now: float) -> bool:
        """Report a death and schedule the restart; False when it died too often."""
        name = process.entry.name
        _kill_group(popen.pid, signal.SIGTERM)  # whatever it left behind
        if process.reader is not None:
            process.reader.join(timeout=2)  # its last lines first
        process.deaths.append(now)
        while process.deaths and now - process.deaths[0] > self.window:
            process.deaths.popleft()
        died = f"{name} (pid {popen.pid}) {describe_exit(popen.returncode)}"
        restarts = len(process.deaths)
        if restarts > self.max_restarts:
            self.system(
                f"{died}; it died {restarts} times within {self.window:g} s, so it is not"
                " restarted. Stopping everything."
            )
            self._show_tail(process)
            return False
        delay = min(self.max_backoff, self.backoff * 2 ** (restarts - 1))
        self.system(
            f"{died}, restarting in {delay:g} s"
            f" (restart {restarts} of at most {self.max_restarts} within {self.window:g} s)"
        )
        self._show_tail(process)
        process.popen = None
        process.restart_at = now + delay
        return True

    def _show_tail(self, process: Process) -> None:
        lines = list(process.tail)
        where = f" (all of it in {self.log_dir / process.entry.name}.log)" if self.log_dir else ""
        if not lines:
            self.system(f"{process.entry.name} printed nothing{where}")
            return
        last = "last line" if len(lines) == 1 else f"last {len(lines)} lines"
        self.system(f"{last} of {process.entry.name}{where}:")
        for line in lines:
            self.system(f"  {process.entry.name}> {line}")

    def stop_all(self) -> None:
        running = [p for p in self.processes if p.popen is not None and p.popen.poll() is None]
        if running:
            names = ", ".join(p.entry.name for p in running)
            self.system(f"stopping {names}")
        for process in running:
            assert process.popen is not None
            _kill_group(process.popen.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for process in running:
            assert process.popen is not None
            try:
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.system(
                    f"{process.entry.name} did not stop within {self.stop_timeout:g} s; killing it"
                )
                _kill_group(process.popen.pid, signal.SIGKILL)
                process.popen.wait()
            self.system(f"{process.entry.name} {describe_exit(process.popen.returncode)}")
        for process in self.processes:
            if process.reader is not None:
                process.reader.join(timeout=2)


def _kill_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--procfile", type=Path, default=Path("Procfile"))
    parser.add_argument("--max-restarts", type=int, default=5, help="per process within --window")
    parser.add_argument("--window", type=float, default=60.0, help="seconds")
    parser.add_argument("--backoff", type=float, default=1.0, help="first restart delay, seconds")
    parser.add_argument("--max-backoff", type=float, default=30.0, help="seconds")
    parser.add_argument("--stop-timeout", type=float, default=10.0, help="seconds before SIGKILL")
    parser.add_argument("--log-dir", type=Path, help="also append each process's output here")
    args = parser.parse_args(argv)
    if args.log_dir is not None:
        args.log_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(
        read_procfile(args.procfile),
        max_restarts=args.max_restarts,
        window=args.window,
        backoff=args.backoff,
        max_backoff=args.max_backoff,
        stop_timeout=args.stop_timeout,
        log_dir=args.log_dir,
    )

    def stop(signum: int, _frame: object) -> None:
        # Only flags: the main thread may hold the output lock right now.
        supervisor.stopped_by = signal.Signals(signum).name
        supervisor.stopping.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
