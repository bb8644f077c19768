"""Hostile strings on every write path never reach librdkafka or pamqp, and Daphne survives.

confluent-kafka 2.16 dies with SIGSEGV on a lone surrogate in a header name
(JSON carries one as ``\\ud800``), raises on one in a key, value or topic, and
cuts header names at a NUL. These tests drive the real Daphne process as an
operator with generated hostile strings, as raw JSON bodies: every answer must
be a 4xx JSON naming the field, the process must still be alive and answer,
and a dead letter must stay pending (never stuck "being requeued").
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import PYTHON, ROOT
from tests.support import kafka as support
from tests.support.rabbitmq import declare, delete_queue, unique

pytestmark = [pytest.mark.kafka, pytest.mark.rabbitmq]

kit = support.kit
KAFKA_API = "/api/clusters/local-kafka/kafka"  # the served Daphne watches the local clusters
RABBIT_API = "/api/clusters/local-rabbitmq/rabbitmq"


def surrogates() -> list[str]:
    """Strings no UTF-8 encoder takes: lone high and low surrogates, alone and mixed."""
    return ["\ud800", "\udfff", "a\udc80b", "ok-\ud83d", "\ud800\ud800", "x\x00\udbff", "é\ud800é"]


def with_nul() -> list[str]:
    return ["\x00", "a\x00b", "trailing\x00"]


def over_long(limit: int) -> list[str]:
    """One byte over ``limit`` of UTF-8, in one-byte and in two-byte characters."""
    return ["r" * (limit + 1), "é" * (limit // 2 + 1)]


def raw(payload: Any) -> bytes:
    """JSON with every non-ASCII character escaped, lone surrogates as ``\\udXXX``."""
    return json.dumps(payload, ensure_ascii=True).encode("ascii")


class Operator:
    """An httpx session logged in as the served database's operator (olga)."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
        self.http.get("/login/")
        answer = self.http.post(
            "/login/",
            data={
                "username": "olga",
                "password": "browser-pass-1",
                "csrfmiddlewaretoken": self.http.cookies["csrftoken"],
            },
        )
        assert answer.status_code == 302, answer.text[:300]

    def post(self, path: str, body: bytes) -> httpx.Response:
        headers = {
            "X-CSRFToken": self.http.cookies["csrftoken"],
            "Content-Type": "application/json",
        }
        return self.http.post(path, content=body, headers=headers)

    def form(self, path: str, data: dict[str, str]) -> httpx.Response:
        return self.http.post(
            path, data={**data, "csrfmiddlewaretoken": self.http.cookies["csrftoken"]}
        )


@pytest.fixture
def operator_http(daphne) -> Iterator[Operator]:
    url, _ = daphne
    session = Operator(url)
    yield session
    session.http.close()


def seed_letters(env: dict[str, str], topic: str, vhost: str, queue: str) -> tuple[int, int]:
    """A Kafka and a RabbitMQ dead letter in the served database (``served_db``)."""
    tag = uuid.uuid4().hex[:8]
    code = f"""
from dashboard.models import Cluster, DeadLetter
k, _ = Cluster.objects.get_or_create(slug="local-kafka", defaults={{"kind": "kafka"}})
r, _ = Cluster.objects.get_or_create(slug="local-rabbitmq", defaults={{"kind": "rabbitmq"}})
a = DeadLetter.objects.create(cluster=k, dlq="{topic}.DLT", capture_key="k-{tag}",
    origin_topic="{topic}", key=b"k", body=b"plain", headers=[["h", "v"]])
b = DeadLetter.objects.create(cluster=r, vhost="{vhost}", dlq="{queue}.dlq", capture_key="r-{tag}",
    origin_routing_key="{queue}", body=b"plain", headers={{"h": "v"}})
print(a.pk, b.pk)
"""
    done = subprocess.run(
        [PYTHON, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    first, second = done.stdout.split()[-2:]
    return int(first), int(second)


def assert_refused(response: httpx.Response, field: str, what: str) -> None:
    assert 400 <= response.status_code < 500, (
        f"{what}: {response.status_code} {response.text[:300]}"
    )
    assert response.headers["content-type"].startswith("application/json"), what
    body = response.json()
    assert body["code"] == "invalid", (what, body)
    assert body.get("field") == field, (what, body)
    assert field in body["error"], (what, body)


def assert_alive(daphne: tuple[str, subprocess.Popen[bytes]], session: Operator) -> None:
    _, process = daphne
    assert process.poll() is None, f"Daphne died with {process.returncode}"
    assert session.http.get("/api/clusters/health").status_code == 200


def test_it_refuses_hostile_strings_on_produce_and_stays_alive(daphne, operator_http, kit):
    topic = kit.topic(partitions=1)
    messages = f"{KAFKA_API}/topics/{topic}/messages"
    cases: list[tuple[dict[str, Any], str]] = []
    for bad in surrogates():
        cases += [
            ({"value": "x", "headers": [[bad, "x"]]}, "headers[0].key"),
            ({"value": "x", "headers": [["ok", "x"], [bad, None]]}, "headers[1].key"),
            ({"value": "x", "headers": [{"key": bad, "value": "x"}]}, "headers[0].key"),
            ({"value": "x", "headers": [["ok", bad]]}, "headers[0].value"),
            ({"value": "x", "key": bad}, "key"),
            ({"value": bad}, "value"),
            (
                {"value": json.dumps(bad, ensure_ascii=False), "value_format": "json"},
                "value",
            ),
        ]
    for bad in with_nul():
        cases += [
            ({"value": "x", "headers": [[bad, "x"]]}, "headers[0].key"),
            ({"value": "x", "headers": [{"key": bad, "value": None}]}, "headers[0].key"),
        ]
    for payload, field in cases:
        assert_refused(operator_http.post(messages, raw(payload)), field, repr(payload))
    assert_alive(daphne, operator_http)

    for bad in [*over_long(249), "a\x00b", "with space", "ü"]:
        path = f"{KAFKA_API}/topics/{quote(bad, safe='')}/messages"
        response = operator_http.post(path, raw({"value": "x"}))
        assert 400 <= response.status_code < 500, (bad[:20], response.text[:200])
        assert response.json()["error"]

    form = operator_http.form(
        f"/clusters/local-kafka/kafka/topics/{topic}/produce/",
        {"value": "x", "headers": "a\x00b: x", "value_format": "text"},
    )
    assert form.status_code == 400 and "NUL" in form.text
    good = operator_http.post(messages, raw({"value": "fine", "headers": [["h", "é"]]}))
    assert good.status_code == 201, good.text[:300]
    assert_alive(daphne, operator_http)


def test_it_refuses_hostile_strings_on_edit_and_requeue_and_leaves_letters_pending(
    daphne, operator_http, kit, served_db, rabbitmq_vhost
):
    topic = kit.topic(partitions=1)
    queue = unique("hostile")
    declare(rabbitmq_vhost, queue)
    try:
        kafka_letter, rabbit_letter = seed_letters(served_db, topic, rabbitmq_vhost, queue)
        kafka_cases: list[tuple[dict[str, Any], str]] = []
        rabbit_cases: list[tuple[dict[str, Any], str]] = []
        for bad in surrogates():
            kafka_cases += [
                ({"headers": [[bad, "x"]]}, "headers[0].key"),
                ({"headers": [["h", "v"], ["ok", bad]]}, "headers[1].value"),
                ({"body": bad}, "body"),
                ({"topic": bad}, "topic"),
            ]
            rabbit_cases += [
                ({"headers": {bad: "x"}}, "headers[0] (name)"),
                ({"headers": {"h": bad}}, "headers.h"),
                ({"headers": {"h": {"inner": [1, bad]}}}, "headers.h.inner[1]"),
                ({"body": bad}, "body"),
                ({"routing_key": bad}, "routing_key"),
                ({"exchange": bad, "routing_key": "r"}, "exchange"),
            ]
        for bad in with_nul():
            kafka_cases.append(({"headers": [[bad, "x"]]}, "headers[0].key"))
        for bad in over_long(255):
            rabbit_cases += [
                ({"routing_key": bad}, "routing_key"),
                ({"headers": {bad: 1}}, "headers[0] (name)"),
            ]
        rabbit_cases.append(({"exchange": "e" * 128, "routing_key": "r"}, "exchange"))
        for letter, cases in ((kafka_letter, kafka_cases), (rabbit_letter, rabbit_cases)):
            path = f"/api/deadletters/letters/{letter}/requeue"
            for payload, field in cases:
                assert_refused(operator_http.post(path, raw(payload)), field, repr(payload))
            shown = operator_http.http.get(f"/api/deadletters/letters/{letter}").json()
            assert shown["status"] == "pending", shown
        assert_alive(daphne, operator_http)

        edited = operator_http.post(
            f"/api/deadletters/letters/{kafka_letter}/requeue",
            raw({"headers": [["h", "é"]], "body": "edited"}),
        )
        assert edited.status_code == 200 and edited.json()["sent"], edited.text[:300]
        assert_alive(daphne, operator_http)
    finally:
        delete_queue(rabbitmq_vhost, queue)


def test_it_refuses_hostile_strings_on_publish_and_move(daphne, operator_http, rabbitmq_vhost):
    cases: list[tuple[str, dict[str, Any], str]] = []
    base = {"vhost": rabbitmq_vhost, "routing_key": "nowhere", "body": "x"}
    move = {"vhost": rabbitmq_vhost, "queue": "source-queue", "target_queue": "t"}
    for bad in surrogates():
        cases += [
            ("publish", {**base, "routing_key": bad}, "routing_key"),
            ("publish", {**base, "exchange": bad}, "exchange"),
            ("publish", {**base, "body": bad}, "body"),
            ("publish", {**base, "headers": {bad: 1}}, "headers[0] (name)"),
            ("publish", {**base, "headers": {"h": [bad]}}, "headers.h[0]"),
            ("publish", {**base, "properties": {"message_id": bad}}, "message_id"),
            ("publish", {**base, "vhost": bad}, "vhost"),
            ("move", {**move, "target_queue": bad}, "target_queue"),
            ("move", {**move, "queue": bad}, "queue"),
            ("move", {**move, "vhost": bad}, "vhost"),
            ("move", {**move, "target_queue": "", "target_exchange": bad}, "target_exchange"),
            (
                "move",
                {**move, "target_queue": "", "target_exchange": "x", "routing_key": bad},
                "routing_key",
            ),
        ]
    cases.append(
        ("move", {**move, "target_queue": "", "target_exchange": "e" * 128}, "target_exchange")
    )
    for endpoint, payload, field in cases:
        response = operator_http.post(f"{RABBIT_API}/{endpoint}", raw(payload))
        assert_refused(response, field, f"{endpoint} {payload!r}")
    assert_alive(daphne, operator_http)
