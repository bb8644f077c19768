"""The served processes' databases: migrated, separate, readable, of the test run's kind."""

from __future__ import annotations

from tests.settings import TEST_DB
from tests.support.served_db import (
    ROOT,
    postgres_database,
    query,
    served_database,
    sqlite_database,
)


def test_each_served_postgres_database_is_migrated_and_separate() -> None:
    first = postgres_database("a")
    second = postgres_database("b")
    assert first != second
    # The template carries the migrations and the demo operator.
    assert query(first, "SELECT username FROM auth_user WHERE username = %s", ("olga",)) == [
        ("olga",)
    ]
    query(first, "UPDATE auth_user SET username = %s", ("renamed",))
    assert query(first, "SELECT username FROM auth_user") == [("renamed",)]
    assert query(second, "SELECT username FROM auth_user") == [("olga",)]
    applied = query(second, "SELECT name FROM django_migrations WHERE app = %s", ("dashboard",))
    on_disk = {p.stem for p in (ROOT / "dashboard" / "migrations").glob("0*.py")}
    assert {name for (name,) in applied} == on_disk


def test_each_served_sqlite_file_is_migrated_separate_and_private(tmp_path) -> None:
    first = sqlite_database(tmp_path / "a.sqlite3")
    second = sqlite_database(tmp_path / "b.sqlite3")
    assert query(first, "SELECT username FROM auth_user WHERE username = %s", ("olga",)) == [
        ("olga",)
    ]
    query(first, "UPDATE auth_user SET username = %s", ("renamed",))
    assert query(first, "SELECT username FROM auth_user") == [("renamed",)]
    assert query(second, "SELECT username FROM auth_user") == [("olga",)]
    applied = query(second, "SELECT name FROM django_migrations WHERE app = %s", ("dashboard",))
    on_disk = {p.stem for p in (ROOT / "dashboard" / "migrations").glob("0*.py")}
    assert {name for (name,) in applied} == on_disk
    assert (tmp_path / "a.sqlite3").stat().st_mode & 0o777 == 0o600


def test_a_served_database_is_of_the_kind_the_test_database_is(tmp_path) -> None:
    url = served_database("kind", tmp_path)
    assert url.startswith("postgres" if TEST_DB == "postgres" else "sqlite:///")
    assert served_database("pinned", tmp_path, "sqlite") == f"sqlite:///{tmp_path}/pinned.sqlite3"
    assert query(url, "SELECT count(*) FROM auth_user WHERE username = %s", ("olga",)) == [(1,)]
