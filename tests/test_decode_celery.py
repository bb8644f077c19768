"""Celery task messages in the decoder: protocol 2 (JSON, MessagePack), protocol 1,
pickle never unpickled, malformed bodies, the exception a message or result carries,
and a task given a new id."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import msgpack
import pytest

from brokers.decode import decode_body
from brokers.decode.celery_task import (
    NotATask,
    failure_from_headers,
    failure_from_result,
    with_new_id,
)

HEADERS = {
    "lang": "py",
    "task": "billing.charge",
    "id": "5f0c-1",
    "retries": 2,
    "eta": "2026-12-06T10:00:00+00:00",
    "parent_id": "parent-9",
    "root_id": "root-1",
    "group": "group-3",
    "origin": "gen1@host",
    "argsrepr": "(12,)",
    "kwargsrepr": "{'currency': 'EUR'}",
}
BODY = [[12], {"currency": "EUR"}, {"callbacks": None, "errbacks": None, "chain": None}]


def test_a_protocol_2_json_task_is_decoded_with_every_field():
    decoded = decode_body(
        json.dumps(BODY).encode(),
        content_type="application/json",
        content_encoding="utf-8",
        headers=HEADERS,
    )
    task = decoded.celery
    assert decoded.format == "celery" and task is not None
    assert (task.name, task.id, task.protocol) == ("billing.charge", "5f0c-1", 2)
    assert task.args == (12,) and task.kwargs == {"currency": "EUR"}
    assert task.retries == 2
    assert task.eta is not None and task.eta.isoformat() == "2026-12-06T10:00:00+00:00"
    assert (task.parent_id, task.root_id, task.group) == ("parent-9", "root-1", "group-3")


def test_a_protocol_2_msgpack_task_is_decoded():
    decoded = decode_body(
        msgpack.packb(BODY),
        content_type="application/x-msgpack",
        content_encoding="binary",
        headers=HEADERS,
    )
    assert decoded.format == "celery" and decoded.celery is not None
    assert decoded.celery.args == (12,) and decoded.celery.kwargs == {"currency": "EUR"}


def test_a_protocol_1_task_is_decoded_from_its_body():
    body = {"task": "old.add", "id": "v1-id", "args": [1, 2], "kwargs": {}, "retries": 1}
    decoded = decode_body(json.dumps(body).encode(), content_type="application/json")
    task = decoded.celery
    assert task is not None and task.protocol == 1
    assert (task.name, task.id, task.args, task.retries) == ("old.add", "v1-id", (1, 2), 1)


class Boom:
    """Unpickling this creates the file it names."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def test_a_pickled_task_is_shown_as_bytes_and_never_unpickled(tmp_path: Path):
    marker = tmp_path / "unpickled"
    data = pickle.dumps(((Boom(marker),), {}, {}))
    decoded = decode_body(
        data,
        content_type="application/x-python-serialize",
        content_encoding="binary",
        headers=HEADERS,
    )
    assert not marker.exists()
    assert decoded.format == "celery" and decoded.celery is not None
    assert decoded.celery.name == "billing.charge"
    assert decoded.celery.args is None and decoded.celery.kwargs is None
    assert "pickle" in decoded.note and "never unpickled" in decoded.note
    assert decoded.text.startswith("00000000  80")  # a hex dump of the bytes
    # The check itself is sound: unpickling really would have created the file.
    pickle.loads(data)
    assert marker.exists()


@pytest.mark.parametrize(
    "body",
    [b"[[1], {}", b"\xff\xfe\x00garbage", b'{"not": "a task"}', b"[1, 2, 3]", b""],
)
def test_a_malformed_task_body_falls_back_without_raising(body: bytes):
    decoded = decode_body(body, content_type="application/json", headers=HEADERS)
    assert decoded.format in ("celery", "json", "text", "binary", "empty")
    if decoded.format == "celery":
        assert decoded.celery is not None and decoded.celery.args is None


def test_headers_that_are_not_a_task_are_not_one():
    decoded = decode_body(b"[[1], {}, {}]", headers={"task": "", "id": "x"})
    assert decoded.celery is None


def test_the_exception_and_traceback_come_from_headers_or_the_stored_result():
    failure = failure_from_headers({"Exception": "ValueError", "traceback": "Traceback ..."})
    assert failure is not None and failure.source == "headers"
    assert (failure.exception, failure.traceback) == ("ValueError", "Traceback ...")
    assert failure_from_headers(HEADERS) is None

    stored = failure_from_result(
        {
            "status": "FAILURE",
            "result": {"exc_type": "Timeout", "exc_module": "app.errors", "exc_message": ["late"]},
            "traceback": "Traceback (most recent call last): ...",
        }
    )
    assert stored is not None and stored.source == "result backend"
    assert (stored.exception, stored.message) == ("app.errors.Timeout", "late")
    assert stored.status == "FAILURE"
    assert stored.traceback.startswith("Traceback")
    success = failure_from_result({"status": "SUCCESS", "result": 3})
    assert success is not None and success.exception == "" and success.status == "SUCCESS"
    assert failure_from_result({"result": 3}) is None


def test_a_new_id_rewrites_the_id_header_of_protocol_2_and_keeps_root_and_body():
    body = json.dumps(BODY).encode()
    task = decode_body(body, content_type="application/json", headers=HEADERS).celery
    assert task is not None
    headers, same = with_new_id(task, HEADERS, body, "application/json", "new-id")
    assert headers["id"] == "new-id" and headers["root_id"] == "root-1"
    assert headers["parent_id"] == "parent-9" and same is body
    assert HEADERS["id"] == "5f0c-1"  # the original is not changed


def test_a_new_id_rewrites_the_body_of_protocol_1():
    body = {"task": "old.add", "id": "v1-id", "args": [1], "kwargs": {}}
    for ctype, data, load in (
        ("application/json", json.dumps(body).encode(), json.loads),
        ("application/x-msgpack", msgpack.packb(body), msgpack.unpackb),
    ):
        task = decode_body(data, content_type=ctype).celery
        assert task is not None and task.protocol == 1
        _, new_body = with_new_id(task, {}, data, ctype, "new-id")
        assert load(new_body) == {**body, "id": "new-id"}
    task = decode_body(json.dumps(body).encode(), content_type="application/json").celery
    assert task is not None
    with pytest.raises(NotATask):
        with_new_id(task, {}, b"\x80\x04K\x01.", "application/x-python-serialize", "x")
