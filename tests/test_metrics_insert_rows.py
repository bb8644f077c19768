"""Metrics rows in one statement per batch (COPY on PostgreSQL, executemany on SQLite)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.db import DataError, connection, transaction

from dashboard.metrics.store import COLUMNS, Row, insert_rows
from dashboard.models import Cluster, ThroughputSample

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 10, 0, 1, 250_000, tzinfo=UTC)


def test_rows_read_back_as_given_past_one_batch_with_floats_in_integer_columns():
    cluster = Cluster.objects.create(slug="c", kind="rabbitmq", name="c")
    at = connection.ops.adapt_datetimefield_value
    rows: list[Row] = [
        (cluster.pk, "queue", f"%2F/q-{i}", "raw", at(T0 + timedelta(seconds=i)),
         i, 0, None, 1.5, 0.0, float("inf"), 3, 2**40, 0.125)
        for i in range(5_003)
    ]  # fmt: skip
    # A sampler may give a whole number as a float; an integer column stores it whole.
    rows.append((cluster.pk, "cluster", "c ünïcode 💥", "minute", at(T0), 7.0, 2.0, None,
                 None, None, None, 4.0, None, None))  # fmt: skip
    insert_rows(rows)
    assert ThroughputSample.objects.count() == 5_004
    stored = ThroughputSample.objects.order_by("pk").values_list(*COLUMNS)
    first, last = stored.first(), stored.last()
    assert first == (cluster.pk, "queue", "%2F/q-0", "raw", T0, 0, 0, None, 1.5, 0.0,
                     float("inf"), 3, 2**40, 0.125)  # fmt: skip
    assert last == (cluster.pk, "cluster", "c ünïcode 💥", "minute", T0, 7, 2, None, None, None,
                    None, 4, None, None)  # fmt: skip
    assert stored.filter(entity="%2F/q-5002").values_list("depth", flat=True).get() == 5002


def test_a_number_out_of_its_columns_range_fails_the_batch():
    cluster = Cluster.objects.create(slug="c", kind="rabbitmq", name="c")
    at = connection.ops.adapt_datetimefield_value(T0)
    good = (cluster.pk, "queue", "%2F/ok", "raw", at, 1, 1, 0, 0.0, 0.0, 0.0, 1, 0, 0.0)
    # Past a 64-bit depth: never stored as some other number (binary COPY would wrap it).
    bad = (cluster.pk, "queue", "%2F/bad", "raw", at, 2**63, 1, 0, 0.0, 0.0, 0.0, 1, 0, 0.0)
    with pytest.raises((DataError, OverflowError)), transaction.atomic():
        insert_rows([good, bad])
    assert not ThroughputSample.objects.exists()
