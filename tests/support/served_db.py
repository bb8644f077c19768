"""Databases for the processes tests start (Daphne, workers, collectors).

``served_database(tag, directory)`` is the one to use: a new migrated database
with the demo operator ``olga`` of the kind ``MQB_TEST_DB`` names, as the test
process's own database is (PostgreSQL: ``postgres_database``; SQLite:
``sqlite_database``, a file in ``directory``). A test that is about one kind
passes ``kind``.

``postgres_database(tag)`` gives a migrated PostgreSQL database of its own on
the project's cluster (``ops/postgres.sh``, which ``make test`` always starts,
whichever database the test run itself uses): it is copied from a template this
test process migrates once (``CREATE DATABASE … TEMPLATE``, about a second
instead of a migration per fixture), holds the demo operator ``olga``, and is
dropped when the test process exits. Several processes sharing one database
(two collectors, two workers, two web processes) is what PostgreSQL is for.

``sqlite_database(path)`` gives the same on SQLite: a copy (SQLite's backup
API) of a template file this test process migrates once.

``query(url, sql, params)`` reads rows from either kind of URL, so a test can
look at what a served process stored without caring which database it has.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from tests.settings import RUN_ID, TEST_DB

ROOT = Path(__file__).resolve().parents[2]
_RUN = re.sub(r"\W", "_", RUN_ID).lower()
_TEMPLATE = f"mqb_served_tpl_{_RUN}"
_counter = itertools.count(1)
_made: list[str] = []
_template_ready = False
_sqlite_template: Path | None = None


def postgres_url() -> str:
    """The project cluster's URL (its ``mqboard`` database)."""
    url = os.environ.get("MQB_TEST_DATABASE_URL", "")
    if url:
        return url
    path = ROOT / "var" / "postgres.url"
    if not path.exists():
        raise RuntimeError(f"no {path}: run ops/postgres.sh up (make test does)")
    return path.read_text().strip()


def _with_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + name))


def _admin(sql: str) -> None:
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        conn.execute(sql)


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "MQB_TEST_DB"}
    env.update({"DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)})
    env.update({"DATABASE_URL": url, "MQB_USER_PASSWORD": "browser-pass-1"})
    return env


def _migrate(url: str) -> None:
    """Migrations and the demo operator, in processes of their own, at ``url``."""
    env = _env(url)
    run = [sys.executable, "manage.py"]
    subprocess.run([*run, "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [*run, "ensure_user", "olga", "--role", "operator"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def _ensure_template() -> None:
    global _template_ready
    if _template_ready:
        return
    # A test process that died without its exit handlers (pytest-timeout ends a hung
    # xdist worker with os._exit) left its databases; the worker xdist starts in its
    # place has the same run id, and would reuse their names.
    with psycopg.connect(postgres_url(), autocommit=True) as conn:
        names = [row[0] for row in conn.execute("SELECT datname FROM pg_database")]
    for name in names:
        if name.startswith(f"mqb_served_{_RUN}_"):
            _drop(name)
    _admin(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{_TEMPLATE}"')
    atexit.register(_drop, _TEMPLATE)
    _migrate(_with_name(postgres_url(), _TEMPLATE))
    _template_ready = True


def _drop(name: str) -> None:
    # The cluster may be gone already at exit; its data goes with it then.
    with contextlib.suppress(psycopg.Error):
        _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def postgres_database(tag: str = "db") -> str:
    """A new migrated PostgreSQL database for served processes: its URL."""
    _ensure_template()
    name = f"mqb_served_{_RUN}_{re.sub(r'[^a-z0-9_]', '_', tag.lower())}_{next(_counter)}"[:63]
    _admin(f'CREATE DATABASE "{name}" TEMPLATE "{_TEMPLATE}"')
    _made.append(name)
    atexit.register(_drop, name)
    return _with_name(postgres_url(), name)


def sqlite_database(path: Path) -> str:
    """A new migrated SQLite file at ``path`` (which must not exist): its URL."""
    global _sqlite_template
    if _sqlite_template is None:
        directory = Path(tempfile.mkdtemp(prefix=f"mqb-served-tpl-{_RUN}-"))
        atexit.register(shutil.rmtree, directory, True)
        _migrate(f"sqlite:///{directory / 'db.sqlite3'}")
        _sqlite_template = directory / "db.sqlite3"
    if path.exists():
        raise FileExistsError(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(_sqlite_template)) as source,
        contextlib.closing(sqlite3.connect(path)) as copy,
    ):
        source.backup(copy)
    path.chmod(0o600)
    return f"sqlite:///{path}"


def served_database(tag: str, directory: Path, kind: str = "") -> str:
    """A new migrated database with ``olga`` for served processes: its URL.

    ``kind`` (``postgres`` or ``sqlite``) defaults to ``MQB_TEST_DB``; on SQLite
    the file is ``<tag>.sqlite3`` in ``directory``.
    """
    if (kind or TEST_DB) == "postgres":
        return postgres_database(tag)
    return sqlite_database(directory / f"{re.sub(r'[^A-Za-z0-9_-]', '_', tag)}.sqlite3")


def served_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a process that uses the database at ``url``."""
    env = _env(url)
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def served_db(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of processes tests start: a database of their own with the demo
    operator ``olga`` (password ``browser-pass-1``), of the kind MQB_TEST_DB names."""
    return served_env(served_database("served", tmp_path_factory.mktemp("served")))


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``%s`` placeholders) from a ``postgres://`` or ``sqlite:///`` URL.

    A statement that returns no rows (an UPDATE) is committed and gives ``[]``.
    """
    if url.startswith("sqlite:///"):
        # A served process may hold the write lock: wait for it as they do.
        path = url.removeprefix("sqlite:///")
        with contextlib.closing(sqlite3.connect(path, timeout=30)) as lite, lite:
            return list(lite.execute(sql.replace("%s", "?"), params).fetchall())
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []
