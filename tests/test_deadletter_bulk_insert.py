"""The capture's batch insert on either database (COPY through a stage on PostgreSQL).

Dedup by the unique capture key within a batch and against stored rows, a
conflict that must fail the batch, NUL and odd bytes, a huge body, and every
column read back the same as the row-by-row ``executemany`` stores it.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from brokers.base.deadletters import CapturedLetter
from brokers.decode.metadata import kafka_failure_info
from brokers.decode.values import from_json, kafka_headers_to_json, to_json
from dashboard.core import clusters, pg_copy
from dashboard.deadletters.bulk_insert import insert_dead_letters
from dashboard.deadletters.store import CaptureTarget, build_row, store_kafka_batch
from dashboard.models import DeadLetter, ManagedDeadLetterQueue

pytestmark = pytest.mark.django_db

ODD_TEXT = "nul \x00 ctl \x01\x1f\x7f bidi \u202e emoji \U0001f4a5 quote ' \" \\ tab \t nl \n"
ALL_BYTES = bytes(range(256))


@pytest.fixture
def target(use_clusters) -> CaptureTarget:
    cluster = clusters.sync_cluster_rows()["test-kafka"]
    managed = ManagedDeadLetterQueue.objects.create(cluster=cluster, name="t-dlq")
    return CaptureTarget(managed.pk, cluster.pk, "test-kafka", "kafka", "", "t-dlq")


def record(
    offset: int, *, body: bytes = b"v", text: str = "has no customer", key: bytes | None = b"k"
) -> CapturedLetter:
    headers: list[tuple[str, bytes | None]] = [
        ("kafka_dlt-original-topic", b"orders"),
        ("kafka_dlt-exception-fqcn", b"java.lang.IllegalStateException"),
        ("kafka_dlt-exception-message", text.encode()),
        ("bin", ALL_BYTES),
        ("none", None),
    ]
    return CapturedLetter(
        dlq="t-dlq",
        vhost="",
        capture_key=f"t-dlq:0:{offset}",
        info=kafka_failure_info(headers, dlq="t-dlq"),
        headers=kafka_headers_to_json(headers),
        properties=to_json({"offset": offset, "partition": 0, "text": text, "key": key}),
        body=body,
        key=key,
    )


def stored() -> list[tuple[str, bytes]]:
    return [
        (k, bytes(b))
        for k, b in DeadLetter.objects.order_by("pk").values_list("capture_key", "body")
    ]


def test_it_skips_keys_stored_before_and_twice_in_one_batch(target, monkeypatch):
    staged: list[int] = []
    through_stage = pg_copy.copy_through_stage

    def spy(*args: Any, **kwargs: Any) -> None:
        staged.append(1)
        through_stage(*args, **kwargs)

    monkeypatch.setattr(pg_copy, "copy_through_stage", spy)
    rows = lambda *offsets, body=b"v": [  # noqa: E731
        build_row(target, record(o, body=body), f"t-dlq:0:{o}") for o in offsets
    ]
    insert_dead_letters(rows(0, 1), ignore_conflicts=True)
    # PostgreSQL: a batch without conflicts is one COPY straight into the table.
    assert staged == []
    insert_dead_letters(rows(1, 2, 2, 3, 0, 4, body=b"again"), ignore_conflicts=True)
    # The first row of a key stays; ids follow the order of each batch.
    assert stored() == [
        ("t-dlq:0:0", b"v"),
        ("t-dlq:0:1", b"v"),
        ("t-dlq:0:2", b"again"),
        ("t-dlq:0:3", b"again"),
        ("t-dlq:0:4", b"again"),
    ]
    # PostgreSQL: the conflicts stopped the COPY, the batch went through the stage.
    assert staged == ([1] if connection.vendor == "postgresql" else [])


def test_a_conflict_fails_the_whole_batch_when_conflicts_are_not_ignored(target):
    insert_dead_letters([build_row(target, record(1), "t-dlq:0:1")], ignore_conflicts=False)
    batch = [build_row(target, record(o), f"t-dlq:0:{o}") for o in (2, 1, 3)]
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_dead_letters(batch, ignore_conflicts=False)
    assert stored() == [("t-dlq:0:1", b"v")]
    # Nothing of the failed batch is left behind for the next one.
    insert_dead_letters([build_row(target, record(4), "t-dlq:0:4")], ignore_conflicts=False)
    assert [k for k, _ in stored()] == ["t-dlq:0:1", "t-dlq:0:4"]


def test_nul_and_odd_bytes_are_stored_as_captured(target):
    letters = [
        record(0, body=ALL_BYTES, text=ODD_TEXT, key=b"\x00\xff\x00"),
        record(1, body=b"", text="", key=None),
    ]
    result = store_kafka_batch(target, letters)
    assert (result.inserted, result.duplicates) == (2, 0)
    first, empty = DeadLetter.objects.order_by("pk")
    assert bytes(first.body) == ALL_BYTES and bytes(first.key or b"") == b"\x00\xff\x00"
    # Text columns hold no NUL (PostgreSQL refuses it): it reads back as U+FFFD.
    assert first.exception_message == ODD_TEXT.replace("\x00", "\ufffd")
    assert from_json(first.properties) == {
        "offset": 0, "partition": 0, "text": ODD_TEXT, "key": b"\x00\xff\x00"
    }  # fmt: skip
    assert first.headers == letters[0].headers
    assert (bytes(empty.body), empty.key, empty.exception_message) == (b"", None, "")


def test_a_huge_body_goes_whole_into_the_row_and_cut_into_its_own_table(target, settings):
    huge = (ALL_BYTES * 40_000)[: 9 * 1024 * 1024 + 7]
    settings.MQB_DLQ_MAX_BODY = 16 * 1024 * 1024
    store_kafka_batch(target, [record(0, body=huge)])
    settings.MQB_DLQ_MAX_BODY = 1024
    store_kafka_batch(target, [record(1, body=huge)])
    whole, cut = DeadLetter.objects.order_by("pk")
    assert (bytes(whole.body), whole.body_size, whole.body_truncated) == (huge, len(huge), False)
    assert (bytes(cut.body), cut.body_size, cut.body_truncated) == (huge[:1024], len(huge), True)
    assert bytes(cut.full_body.data) == huge


def test_every_column_reads_back_as_the_row_by_row_insert_stores_it(target):
    letter = record(0, body=ALL_BYTES, text=ODD_TEXT, key=b"\x00k")
    row = build_row(target, letter, "set-based")
    row.update(origin_partition=7, origin_offset=2**62, attempts=2**31 - 1, came_back=3)
    stamped = insert_dead_letters([row], ignore_conflicts=True)
    insert_dead_letters([{**row, "capture_key": "row-by-row"}], ignore_conflicts=True,
                        set_based=False)  # fmt: skip
    fields = [f.attname for f in DeadLetter._meta.concrete_fields if f.attname != "id"]
    a, b = (
        DeadLetter.objects.filter(capture_key=k).values(*fields).get()
        for k in ("set-based", "row-by-row")
    )
    assert a.pop("captured_at") == stamped
    b.pop("captured_at")
    assert a.pop("capture_key") == "set-based" and b.pop("capture_key") == "row-by-row"
    assert a == b
    assert (a["origin_offset"], a["attempts"], a["status"]) == (2**62, 2**31 - 1, "pending")


def test_json_that_orjson_refuses_is_stored_as_the_standard_library_writes_it(target):
    # Integers beyond 64 bits and non-string keys: orjson refuses them, json.dumps
    # writes them; a subclass of str must be written as the str it holds.
    class Name(str):
        pass

    odd = {"big": 2**70, 3: "int key", Name("sub"): Name("class"), "text": "é \u202e \U0001f4a5"}
    row = build_row(target, record(0), "set-based")
    row.update(properties=odd, failure_details={"nested": [odd, None, 1.5, True]})
    insert_dead_letters([row], ignore_conflicts=True)
    insert_dead_letters([{**row, "capture_key": "row-by-row"}], ignore_conflicts=True,
                        set_based=False)  # fmt: skip
    a, b = (
        DeadLetter.objects.filter(capture_key=k).values("properties", "failure_details").get()
        for k in ("set-based", "row-by-row")
    )
    assert a == b
    assert a["properties"] == {"big": 2**70, "3": "int key", "sub": "class",
                               "text": "é \u202e \U0001f4a5"}  # fmt: skip
