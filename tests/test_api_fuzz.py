"""Fuzzing the JSON API with schemathesis, against a real Daphne and the real brokers.

Schemathesis reads ``/api/openapi.json`` from the running server and sends
generated requests to every operation: valid ones, boundary values (the
coverage phase) and invalid ones (negative mode). A run fails on any 5xx, on a
request that hangs (``REQUEST_TIMEOUT``), on a status code, content type or
body the document does not describe, and on invalid input that is accepted.

The viewer fuzzes every read; the operator fuzzes every write. Writes only ever
reach what this module creates: a RabbitMQ vhost with two queues, a Kafka topic
and a consumer group, and the dead letters and jobs of its own database (of the
kind MQB_TEST_DB names; its Daphne has its own Celery queue too, which no worker
reads, so a move it starts never runs). ``confine`` rewrites every generated
cluster, vhost, queue, topic and group of a write to them before it is sent.
Admin-only writes (purges of topics and stored letters, offset resets, DLQ
management) are refused to both roles, which the run checks too.

Bounded: ``MAX_EXAMPLES`` generated cases per operation and phase, each
request at most ``REQUEST_TIMEOUT`` seconds; about 40 operations in all.
"""

from __future__ import annotations

import json
import os
import subprocess
import zlib
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import redis
import requests
import schemathesis
from confluent_kafka import Consumer, TopicPartition

from dashboard.openapi import build_schema
from tests.conftest import (
    GUEST,
    KAFKA,
    MGMT,
    PYTHON,
    ROOT,
    free_port,
    stop_process,
    wait_for_port,
)
from tests.settings import RUN_ID
from tests.support.deadletters import create_topic, delete_group, delete_topics, produce
from tests.support.served_db import served_database, served_env

pytestmark = [pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.redis]

MAX_EXAMPLES = 20
REQUEST_TIMEOUT = 30.0
RABBIT = "local-rabbitmq"
KAFKA_SLUG = "local-kafka"
VHOST = f"mqb-fuzz-{RUN_ID}"
QUEUE = "fuzz.q"
QUEUE2 = "fuzz.q2"
TOPIC = f"mqb-fuzz-{RUN_ID}"
GROUP = f"mqb-fuzz-{RUN_ID}"
CELERY_QUEUE = f"mqb-fuzz-{RUN_ID}"
PASSWORD = "fuzz-pass-1"
USERS = {"viewer": "fuzz-viewer", "operator": "fuzz-operator"}

CONFIG = schemathesis.Config.from_dict(
    {
        "request-timeout": REQUEST_TIMEOUT,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            # The session cookie comes from a real login, not from generation.
            "with-security-parameters": False,
            # Nothing written to .hypothesis/: every run starts fresh.
            "database": "none",
            # The same examples on every run, so `make test` is repeatable;
            # MQB_FUZZ_RANDOM=1 explores new ones (run it now and then).
            "deterministic": os.environ.get("MQB_FUZZ_RANDOM") != "1",
        },
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            # Replaced by no_server_error, which knows the one documented 502.
            "not_a_server_error": {"enabled": False},
            "status_code_conformance": {"enabled": True},
            "content_type_conformance": {"enabled": True},
            "response_schema_conformance": {"enabled": True},
            "response_headers_conformance": {"enabled": True},
            "negative_data_rejection": {"enabled": True},
            "positive_data_acceptance": {"enabled": False},
            "use_after_free": {"enabled": False},
            "ensure_resource_availability": {"enabled": False},
            "ignored_auth": {"enabled": False},
        },
    }
)


# -- what the run owns ---------------------------------------------------------


@pytest.fixture(scope="module")
def fuzz_entities() -> Iterator[None]:
    """A vhost with two queues holding a few messages, a topic with records, a group."""
    path = quote(VHOST, safe="")
    with httpx.Client(base_url=MGMT, auth=GUEST, timeout=10) as http:
        http.put(f"/api/vhosts/{path}").raise_for_status()
        http.put(
            f"/api/permissions/{path}/guest",
            json={"configure": ".*", "write": ".*", "read": ".*"},
        ).raise_for_status()
        for queue in (QUEUE, QUEUE2):
            http.put(f"/api/queues/{path}/{queue}", json={"durable": True}).raise_for_status()
        for i in range(3):
            http.post(
                f"/api/exchanges/{path}/amq.default/publish",
                json={"properties": {}, "routing_key": QUEUE, "payload": f'{{"n": {i}}}',
                      "payload_encoding": "string"},
            ).raise_for_status()  # fmt: skip
        create_topic(TOPIC, partitions=2)
        produce(TOPIC, [(f"k{i}".encode(), b'{"n": %d}' % i, [("h", "v")]) for i in range(4)])
        consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": GROUP})
        consumer.commit(offsets=[TopicPartition(TOPIC, 0, 1)], asynchronous=False)
        consumer.close()
        try:
            yield
        finally:
            http.delete(f"/api/vhosts/{path}")
            delete_group(GROUP)
            delete_topics(TOPIC)
            # Tasks of moves the fuzzer started: nobody consumes this queue.
            redis.Redis.from_url("redis://127.0.0.1:6379/0").delete(CELERY_QUEUE)


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, fuzz_entities, redis_url) -> Iterator[str]:
    """Daphne with its own database, users of both roles and its own Celery queue."""
    db = served_database("fuzz", tmp_path_factory.mktemp("fuzz"))
    env = served_env(db, MQB_USER_PASSWORD=PASSWORD, MQB_CELERY_QUEUE=CELERY_QUEUE)
    for role, username in USERS.items():
        subprocess.run(
            [PYTHON, "manage.py", "ensure_user", username, "--role", role],
            cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    port = free_port()
    log = open(ROOT / "var" / "log" / f"test-fuzz-daphne-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}"
        assert process.poll() is None, "Daphne died during the fuzzing run"
    finally:
        stop_process(process)
        log.close()


def login(base_url: str, role: str) -> requests.Session:
    session = requests.Session()
    session.get(f"{base_url}/login/", timeout=10).raise_for_status()
    answer = session.post(
        f"{base_url}/login/",
        data={
            "username": USERS[role],
            "password": PASSWORD,
            "csrfmiddlewaretoken": session.cookies["csrftoken"],
        },
        headers={"Referer": f"{base_url}/login/"},
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text[:500]
    session.headers["X-CSRFToken"] = str(session.cookies["csrftoken"])
    return session


@pytest.fixture(scope="module")
def viewer_session(fuzz_server) -> requests.Session:
    return login(fuzz_server, "viewer")


@pytest.fixture(scope="module")
def operator_session(fuzz_server) -> requests.Session:
    return login(fuzz_server, "operator")


@pytest.fixture(scope="module")
def served_schema(fuzz_server: str, viewer_session: requests.Session) -> str:
    """The base URL, once the served document is known to be the one fuzzed."""
    served = viewer_session.get(f"{fuzz_server}/api/openapi.json", timeout=10)
    assert served.status_code == 200
    assert served.json() == json.loads(json.dumps(build_schema()))
    return fuzz_server


# -- keeping writes on what the run owns ---------------------------------------

PATH_OWNED = {"slug": RABBIT, "topic": TOPIC, "group": GROUP}
QUERY_OWNED = {"vhost": VHOST, "name": QUEUE}
BODY_OWNED = {"vhost": VHOST, "queue": QUEUE, "target_queue": QUEUE2, "topic": TOPIC}


def _half(value: object) -> bool:
    """A stable coin: reads keep about half of their generated names."""
    return zlib.crc32(repr(value).encode()) % 2 == 0


def confine(case: Any) -> None:
    """Point a write at the run's own entities; half of the reads too (the rest stay random)."""
    write = case.operation.method.upper() != "GET"
    path = case.operation.path

    def own(container: dict[str, Any] | None, owned: dict[str, str]) -> None:
        if not isinstance(container, dict):
            return
        for key, mine in owned.items():
            value = container.get(key)
            # Only strings: a value of the wrong type is a negative case the server must refuse.
            if isinstance(value, str) and (write or _half(value)):
                container[key] = mine

    params = case.path_parameters
    if isinstance(params, dict):
        if "cluster" in params:
            params["cluster"] = RABBIT if "/metrics/" in path and _half(params) else KAFKA_SLUG
        # Cluster slugs are fixed: an unknown one only ever answers 404.
        if "slug" in params:
            params["slug"] = RABBIT
        own(params, PATH_OWNED)
    own(case.query, QUERY_OWNED)
    if path.endswith("/rabbitmq/publish"):
        # Half of the publishes reach the queue (the rest are unroutable, a documented 502).
        own(case.body, {"routing_key": QUEUE})
    if write:
        own(case.body, BODY_OWNED)
        if "/api/deadletters/queues/" in path and isinstance(case.body, dict):
            own(case.body, {"cluster": RABBIT, "name": QUEUE2})


# -- what counts as a failure besides the schema ---------------------------------


def _code(response: Any) -> object:
    try:
        return response.json().get("code")
    except (ValueError, AttributeError):
        return None


def no_server_error(ctx: Any, response: Any, case: Any) -> None:
    """Any 5xx fails, but the documented answer to a valid but unroutable publish."""
    status = response.status_code
    if status < 500:
        return
    if status == 502 and case.operation.path.endswith("/publish") and _code(response) in UNROUTED:
        return
    raise AssertionError(f"{status} from {case.operation.label}: {response.text[:500]}")


UNROUTED = {"unroutable"}
REQUESTS: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def fuzz_counts(request) -> Iterator[None]:
    """The run's size, shown after it: operations and requests per role."""
    yield
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and REQUESTS:
        operations = {key.split(" ", 1)[1] for key in REQUESTS}
        lines = [f"API fuzzing: {sum(REQUESTS.values())} requests to {len(operations)} operations"]
        for role in USERS:
            mine = {k: n for k, n in REQUESTS.items() if k.startswith(role + " ")}
            lines.append(f"  {role}: {sum(mine.values())} requests to {len(mine)} operations")
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            for line in lines:
                reporter.write_line(line)


def fuzz(case: Any, role: str, base_url: str, session: requests.Session) -> None:
    confine(case)
    REQUESTS[f"{role} {case.operation.label}"] += 1
    case.call_and_validate(
        base_url=base_url,
        session=session,
        timeout=REQUEST_TIMEOUT,
        additional_checks=[no_server_error],
    )


# -- the fuzzing runs ------------------------------------------------------------

# The document is built here and compared with the served one (``served_schema``):
# schemathesis's loader from a fixture does not work with pytest 9.2 (it sets
# ``Node._nodeid``, which pytest 9.2 no longer has), and loading here gives one
# test per operation, each with pytest's own timeout.
schema = schemathesis.openapi.from_dict(build_schema(), config=CONFIG)


@schema.include(method="GET").parametrize()
def test_it_answers_every_read_of_a_viewer_as_documented(case, served_schema, viewer_session):
    fuzz(case, "viewer", served_schema, viewer_session)


@schema.exclude(method="GET").parametrize()
def test_it_answers_every_write_of_an_operator_as_documented(case, served_schema, operator_session):
    fuzz(case, "operator", served_schema, operator_session)
