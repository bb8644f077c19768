"""Where a served request's time goes: py-spy on one Daphne under wrk, per target.

The same setup as ``concurrent_pages.py`` (one Daphne on a temporary SQLite database
with ``LETTERS`` dead letters, the collector with every loop and its first snapshot, a
logged-in viewer), without its counting proxies. For each target (``overview``,
``queues``, ``inbox``, ``health``, and ``noop``: a logged-in request that reads nothing,
answered with a redirect) wrk runs ``DURATION`` seconds (default 15) with ``CLIENTS``
connections (default 50) while ``py-spy record --gil`` samples the Daphne process (not
paused: ``--nonblocking``; ``GIL=0``: every thread that is not idle, so time in C code
that let the GIL go, such as SQLite's, shows too). Printed per target: requests/s, then
the functions in most samples, by self time and by inclusive time (the share of all
samples), and the collapsed stacks are kept in ``OUT`` (default ``var/profile``) for a
flame graph.

Run: ``.venv/bin/python benchmarks/profile_pages.py [target ...]`` with the services up,
``wrk`` installed, under ``flock /work/notes/bench.lock`` where benchmarks share a machine.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from concurrent_pages import (
    LETTERS,
    PYTHON,
    ROOT,
    SEED,
    base_env,
    forget_redis_keys,
    free_port,
    log_in,
    start,
    start_collector,
    wait_for_collector,
    wait_until,
    wrk,
)

DURATION = int(os.environ.get("DURATION", "15"))
OUT = Path(os.environ.get("OUT", str(ROOT / "var" / "profile")))
PY_SPY = str(Path(PYTHON).parent / "py-spy")
TOP = 25
GIL_ONLY = os.environ.get("GIL", "1") != "0"


def frame_name(frame: str) -> str:
    """``func (path/to/file.py:12)`` as ``func (file.py)``: one entry per function."""
    func, _, where = frame.partition(" (")
    return f"{func} ({Path(where.split(':')[0]).name})" if where else func


def summarize(collapsed: Path) -> str:
    selfs: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";")]
        if not frames:
            continue
        total += count
        selfs[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    lines = [f"  {total} samples"]
    for title, counter in (("self", selfs), ("inclusive", inclusive)):
        lines.append(f"  -- {title}")
        for name, count in counter.most_common(TOP):
            lines.append(f"  {100 * count / max(total, 1):5.1f}%  {name}")
    return "\n".join(lines)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    wanted = sys.argv[1:] or ["health", "overview", "queues", "inbox"]
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mqb-profile-") as tmp:
        workdir = Path(tmp)
        env = base_env(workdir)
        for command in (
            ["migrate", "--no-input", "-v0"],
            ["ensure_user", "bench", "--role", "viewer"],
        ):
            subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True)
        if LETTERS:
            seed = SEED.replace("LETTERS", str(LETTERS))
            subprocess.run(
                [PYTHON, "manage.py", "shell", "-c", seed], cwd=ROOT, env=env, check=True
            )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        daphne = [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port)]
        web = start([*daphne, "dashboard.asgi:application"], env, workdir / "daphne.log")
        collector = start_collector(env, workdir)
        try:
            wait_until(lambda: httpx.get(url + "/login/", timeout=1), "Daphne")
            client = log_in(url)
            wait_for_collector(client)
            cookie = "Cookie: " + "; ".join(f"{k}={v}" for k, v in client.cookies.items())
            paths = {
                "overview": "/",
                "queues": "/rabbitmq/local-rabbitmq/",
                "inbox": "/deadletters/",
                "health": "/api/clusters/health",
                "noop": "/kafka/",
            }
            for name in wanted:
                target = url + paths[name]
                for _ in range(20):  # warm: caches, connections
                    client.get(paths[name])
                collapsed = OUT / f"{name}.txt"
                spy_args = ["--nonblocking", "-r", "250", "-f", "raw", "-d", str(DURATION - 2)]
                spy_args += ["--gil"] if GIL_ONLY else []
                spy = subprocess.Popen(
                    [PY_SPY, "record", *spy_args, "-p", str(web.pid), "-o", str(collapsed)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                time.sleep(0.5)
                cpu_before, wall_before = cpu_seconds(web.pid), time.monotonic()
                result = wrk(target, cookie)
                cores = (cpu_seconds(web.pid) - cpu_before) / (time.monotonic() - wall_before)
                spy.wait(timeout=60)
                print(
                    f"{name}: {result['rps']:.1f} req/s p50 {result['p50']:.1f} ms"
                    f" p99 {result['p99']:.1f} ms timeouts {result['timeouts']:.0f}"
                    f" non-2xx {result['non2xx']:.0f} web CPU {cores:.2f} cores"
                    f" (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
                print(summarize(collapsed), flush=True)
        finally:
            for process in (web, collector):
                process.terminate()
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
            forget_redis_keys(env)


if __name__ == "__main__":
    main()
