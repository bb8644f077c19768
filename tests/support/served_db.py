"""Databases for the processes tests start (Daphne, workers, collectors).

``postgres_database(tag)`` gives a migrated PostgreSQL database of its own on
the project's cluster (``ops/postgres.sh``, which ``make test`` always starts,
whichever database the test run itself uses): it is copied from a template this
test process migrates once (``CREATE DATABASE … TEMPLATE``, about a second
instead of a migration per fixture), holds the demo operator ``olga``, and is
dropped when the test process exits. Several processes sharing one database
(two collectors, two workers, two web processes) is what PostgreSQL is for.

``query(url, sql, params)`` reads rows from either kind of URL, so a test can
look at what a served process stored without caring which database it has.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from tests.settings import RUN_ID

ROOT = Path(__file__).resolve().parents[2]
_RUN = re.sub(r"\W", "_", RUN_ID).lower()
_TEMPLATE = f"mqb_served_tpl_{_RUN}"
_counter = itertools.count(1)
_made: list[str] = []
_template_ready = False


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


def _ensure_template() -> None:
    global _template_ready
    if _template_ready:
        return
    _admin(f'DROP DATABASE IF EXISTS "{_TEMPLATE}" WITH (FORCE)')
    _admin(f'CREATE DATABASE "{_TEMPLATE}"')
    atexit.register(_drop, _TEMPLATE)
    env = _env(_with_name(postgres_url(), _TEMPLATE))
    run = [sys.executable, "manage.py"]
    subprocess.run([*run, "migrate", "--no-input", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [*run, "ensure_user", "olga", "--role", "operator"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
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


def served_env(url: str, **extra: str) -> dict[str, str]:
    """The environment of a process that uses the database at ``url``."""
    env = _env(url)
    env.update(extra)
    return env


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of ``sql`` (``%s`` placeholders) from a ``postgres://`` or ``sqlite:///`` URL.

    A statement that returns no rows (an UPDATE) is committed and gives ``[]``.
    """
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return list(conn.execute(sql.replace("%s", "?"), params).fetchall())
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []
