"""PostgreSQL: a batch of DeadLetter rows in two statements, whatever its size.

``COPY … FROM STDIN (FORMAT BINARY)`` streams the batch into a temporary
staging table of this session (``CREATE TEMP TABLE IF NOT EXISTS … ON COMMIT
DELETE ROWS``, the dead letter columns and the row's place in the batch); one
statement then moves it into the table::

    WITH moved AS (DELETE FROM stage RETURNING …)
    INSERT INTO dashboard_deadletter (…) SELECT … FROM moved ORDER BY ord
    [ON CONFLICT DO NOTHING]

so the unique capture key still decides (a row already stored, or twice in
the batch, is skipped when conflicts are ignored, and fails the batch when
they are not), ids follow the batch's order as with one INSERT per row, and the
staging table is empty after every batch (and truncated at every commit: the
rows a statement deleted leave nothing behind, as temporary tables are never
vacuumed). Measured against one ``executemany`` of the prepared INSERT and
against one ``INSERT … SELECT FROM unnest(arrays)``, 500 rows of 1 KB: COPY
through the stage was about twice as fast as either, and as fast as a COPY
straight into the table (which cannot skip conflicts).

Values arrive adapted by ``bulk_insert`` (Django's adapters: ``Jsonb`` for
JSON, aware datetimes, ``bytes``); binary COPY needs each column's type, which
comes from the field's own database type.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

import psycopg
from django.db import connection, models, transaction

STAGE = "mqb_deadletter_stage"
# Binary COPY names a type per column; varchar(n) travels as text.
_COPY_TYPES = {
    "bigint": "int8",
    "integer": "int4",
    "smallint": "int2",
    "boolean": "bool",
    "jsonb": "jsonb",
    "bytea": "bytea",
    "text": "text",
    "timestamp with time zone": "timestamptz",
    "double precision": "float8",
}


def copy_type(field: models.Field[Any, Any]) -> str:
    db_type = str(field.db_type(connection))
    if db_type.startswith("varchar"):
        return "text"
    return _COPY_TYPES[db_type]


@cache
def _statements(
    table: str, columns: tuple[str, ...], ignore_conflicts: bool
) -> tuple[str, str, str]:
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in columns)
    # Only our own table and column names are interpolated; values travel in COPY.
    create = (
        f"CREATE TEMP TABLE IF NOT EXISTS {STAGE} ON COMMIT DELETE ROWS AS"  # noqa: S608
        f" SELECT 0 AS ord, {names} FROM {quote(table)} WITH NO DATA"
    )
    copy = f"COPY {STAGE} (ord, {names}) FROM STDIN (FORMAT BINARY)"
    move = (
        f"WITH moved AS (DELETE FROM {STAGE} RETURNING *)"  # noqa: S608
        f" INSERT INTO {quote(table)} ({names}) SELECT {names} FROM moved ORDER BY ord"
        + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
    )
    return create, copy, move


def copy_rows(
    model: type[models.Model],
    fields: Sequence[models.Field[Any, Any]],
    values: Sequence[tuple[Any, ...]],
    *,
    ignore_conflicts: bool,
) -> None:
    """Insert ``values`` (one tuple per row, in ``fields`` order) into ``model``'s table."""
    columns = tuple(f.column for f in fields)
    create, copy_sql, move = _statements(model._meta.db_table, columns, ignore_conflicts)
    types = ["int4", *(copy_type(f) for f in fields)]
    # The stage empties at commit: COPY and the move must share one transaction.
    with (
        transaction.atomic(savepoint=False),
        connection.cursor() as wrapper,
        connection.wrap_database_errors,
        # A cursor of psycopg's own: Django's binds parameters client-side.
        psycopg.Cursor(wrapper.cursor.connection) as cursor,
    ):
        cursor.execute(create)
        with cursor.copy(copy_sql) as copy:
            copy.set_types(types)
            for ord_, row in enumerate(values):
                copy.write_row((ord_, *row))
        cursor.execute(move)
