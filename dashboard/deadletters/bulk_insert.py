"""One statement per batch of DeadLetter rows: the capture's hot path.

``bulk_create`` compiles a multi-row INSERT in Python, and on SQLite splits it
into statements of 999 parameters (31 rows of DeadLetter): two thirds of the
time capture spent per row. Here the statement is built once from the model's
fields and each row is adapted with the backend's own adapters
(``connection.ops``), so it stays correct on SQLite and PostgreSQL, including
``ignore_conflicts`` (``INSERT OR IGNORE`` / ``ON CONFLICT DO NOTHING``).

SQLite runs that one ``executemany``; PostgreSQL takes the same values
set-based, by one COPY, with the same conflict handling (through a staging
table and one ``INSERT … SELECT … ON CONFLICT DO NOTHING`` when a key is
already stored: ``dashboard.core.pg_copy``). For COPY a row is read in one
C-level step (defaults merged, then ``itemgetter``) and only its JSON and
binary columns are touched: the adapters above are what psycopg's dumpers
already do for the rest (datetimes and text pass as they are), and JSON is
encoded once, by orjson, into jsonb's binary format (``encode_jsonb``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from functools import cache
from operator import itemgetter
from typing import Any

from django.db import connection, models
from django.db.models.constants import OnConflict
from django.utils import timezone

from dashboard.core.jsonb import encode_jsonb
from dashboard.core.pg_copy import copy_rows
from dashboard.models import DeadLetter

Adapter = Callable[[Any], Any]


def _same(value: Any) -> Any:
    return value


@cache
def _plan(vendor: str, ignore_conflicts: bool) -> tuple[str, tuple[models.Field[Any, Any], ...]]:
    ops = connection.ops
    fields = tuple(f for f in DeadLetter._meta.concrete_fields if not f.primary_key)
    quote = ops.quote_name
    conflict = OnConflict.IGNORE if ignore_conflicts else None
    sql = " ".join(
        part
        for part in (
            ops.insert_statement(on_conflict=conflict),
            quote(DeadLetter._meta.db_table),
            f"({', '.join(quote(f.column) for f in fields)})",
            f"VALUES ({', '.join(['%s'] * len(fields))})",
            ops.on_conflict_suffix_sql(fields, conflict, None, None) if conflict else "",
        )
        if part
    )
    return sql, fields


def _adapter(field: models.Field[Any, Any]) -> Adapter:
    ops = connection.ops
    if isinstance(field, models.JSONField):
        encoder = field.encoder
        return lambda value: ops.adapt_json_value(value, encoder)
    if isinstance(field, models.DateTimeField):
        return ops.adapt_datetimefield_value
    if isinstance(field, models.BinaryField):
        return lambda value: None if value is None else bytes(value)
    return _same


def insert_dead_letters(
    rows: Sequence[dict[str, Any]], *, ignore_conflicts: bool, set_based: bool = True
) -> datetime:
    """Insert rows given as ``{attname: value}``; missing fields take their defaults.
    Returns the ``captured_at`` rows without one were stamped with (one per call).

    On PostgreSQL the batch goes in by COPY (``copy_rows``) unless ``set_based``
    is False, which runs the ``executemany`` SQLite runs (the same rows result).
    """
    now = timezone.now()
    if not rows:
        return now
    sql, fields = _plan(connection.vendor, ignore_conflicts)
    if set_based and connection.vendor == "postgresql":
        copy_rows(
            DeadLetter, fields, _copy_values(fields, rows, now),
            ignore_conflicts=ignore_conflicts, encoded_json=True,
        )  # fmt: skip
        return now
    plan = []
    for field in fields:
        # get_default() is what a model instance would hold: "" for text, None if nullable.
        default = now if field.attname == "captured_at" else field.get_default()
        plan.append((field.attname, default, _adapter(field)))
    values = [tuple(adapt(row.get(name, default)) for name, default, adapt in plan) for row in rows]
    with connection.cursor() as cursor:
        cursor.executemany(sql, values)
    return now


def _copy_values(
    fields: Sequence[models.Field[Any, Any]], rows: Sequence[dict[str, Any]], now: datetime
) -> list[list[Any]]:
    """The rows as COPY takes them (``fields`` order, JSON encoded, binary as bytes)."""
    defaults = {f.attname: now if f.attname == "captured_at" else f.get_default() for f in fields}
    read = itemgetter(*(f.attname for f in fields))
    jsons = [i for i, f in enumerate(fields) if isinstance(f, models.JSONField)]
    binaries = [i for i, f in enumerate(fields) if isinstance(f, models.BinaryField)]
    values = []
    for row in rows:
        value = list(read(defaults | row))
        for i in jsons:
            value[i] = encode_jsonb(value[i])
        for i in binaries:
            if value[i] is not None and type(value[i]) is not bytes:
                value[i] = bytes(value[i])
        values.append(value)
    return values
