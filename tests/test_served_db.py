"""The served processes' PostgreSQL databases: migrated, separate, readable, dropped."""

from __future__ import annotations

from tests.support.served_db import ROOT, postgres_database, query


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
