"""Run benchmarks on two checkouts in one run and print their RESULT lines side by side.

A change that moves code (a restructure) must leave every benchmark where it
was. This runs each named benchmark in the ``--before`` tree, then in this
tree, back to back on the same machine and services, with the same arguments,
and prints both ``RESULT`` lines. The benchmarks' own ratios compare the
dashboard with a reference measured in the same process run, so noise that
hits both sides cancels; the two trees' ratios are then comparable.

Usage:
  .venv/bin/python benchmarks/before_after.py --before ../before-tree \
      dlq_requeue="--count 20000 --runs 3" rabbitmq_queue_list kafka_lists ...

Each argument is a benchmark's module name, optionally ``=`` the arguments it
gets in both trees (they must exist in both versions of the script). Each tree
runs with its own ``.venv/bin/python``. The last line is
``RESULT <benchmark>.<key>_before=<v> <benchmark>.<key>_after=<v> ...``.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent


def result_line(output: str) -> dict[str, str]:
    lines = [line for line in output.splitlines() if line.startswith("RESULT ")]
    if not lines:
        return {}
    pairs = (item.split("=", 1) for item in lines[-1].split()[1:] if "=" in item)
    return {key: value for key, value in pairs}


def run(tree: Path, name: str, args: list[str]) -> tuple[dict[str, str], float]:
    started = time.monotonic()
    done = subprocess.run(
        [str(tree / ".venv/bin/python"), f"benchmarks/{name}.py", *args],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    result = result_line(done.stdout + done.stderr)
    if done.returncode != 0 or not result:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-15:])
        print(f"  {name} in {tree} failed (exit {done.returncode}):\n{tail}", flush=True)
    return result, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, type=Path, help="the other checkout")
    parser.add_argument("benchmarks", nargs="+", help='name or name="--its --args"')
    options = parser.parse_args()
    before = options.before.resolve()
    final: list[str] = []
    for spec in options.benchmarks:
        name, _, arg_text = spec.partition("=")
        args = shlex.split(arg_text)
        print(f"== {name} {arg_text}".rstrip(), flush=True)
        for label, tree in (("before", before), ("after", HERE)):
            result, elapsed = run(tree, name, args)
            shown = " ".join(f"{k}={v}" for k, v in result.items()) or "no RESULT line"
            print(f"  {label:6} {shown}   ({elapsed:.0f} s)", flush=True)
            final += [f"{name}.{k}_{label}={v}" for k, v in result.items()]
    print("RESULT " + " ".join(final), flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
