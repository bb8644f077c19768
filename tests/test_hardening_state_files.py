"""The state directory and the SQLite database are readable by their owner only."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
from pathlib import Path

from tests.conftest import PYTHON, ROOT, python_env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def run_as_deployed(state: Path, *args: str) -> None:
    """manage.py with the production settings, the default database, and a lax umask."""
    env = python_env(DJANGO_SETTINGS_MODULE="dashboard.settings", MQB_STATE_DIR=str(state))
    env.pop("DATABASE_URL", None)
    env.pop("DJANGO_SECRET_KEY", None)
    subprocess.run(
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        preexec_fn=lambda: os.umask(0o022),  # the umask most shells have
    )


def test_it_creates_the_state_dir_and_database_owner_only(tmp_path):
    state = tmp_path / "var"

    run_as_deployed(state, "migrate", "--no-input", "-v0")

    database = state / "db.sqlite3"
    assert mode(state) == 0o700
    assert mode(database) == 0o600
    assert mode(state / "secret_key") == 0o600
    # SQLite gives its WAL and shared-memory files the database file's mode.
    with sqlite3.connect(database) as connection:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE probe (x)")
        assert mode(state / "db.sqlite3-wal") == 0o600
        assert mode(state / "db.sqlite3-shm") == 0o600
    connection.close()


def test_it_tightens_an_existing_state_dir_and_database(tmp_path):
    state = tmp_path / "var"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    (state / "db.sqlite3").touch()
    (state / "db.sqlite3").chmod(0o644)

    run_as_deployed(state, "migrate", "--no-input", "-v0")

    # Others keep only "x": the RabbitMQ node, its own user, passes through to its data.
    assert mode(state) == 0o711
    assert mode(state / "db.sqlite3") == 0o600


def test_it_makes_the_service_scripts_state_dirs_owner_only(tmp_path):
    state = tmp_path / "var"
    subprocess.run(
        ["bash", "-c", "umask 022 && source ops/lib.sh && ensure_dirs"],
        cwd=ROOT,
        env={**os.environ, "MQB_STATE_DIR": str(state)},
        check=True,
    )

    assert mode(state) == 0o700
    assert {mode(state / name) for name in ("log", "data", "run")} == {0o700}
