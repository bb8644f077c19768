"""Debian's Chromium through the dead-letter inbox under real Daphne: requeue one by click.

The served Daphne watches one RabbitMQ cluster, ``test-rabbitmq``, in this
run's test vhost. A dead letter is made by really rejecting a message and
captured into the served database by a subprocess running the real capture
engine; the browser opens it from the inbox, requeues it (accepting the
confirm) and the test sees it arrive at its origin queue.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import quote

import pytest

from tests import deadletter_flow as flow
from tests import deadletter_helpers as h
from tests.conftest import PYTHON, ROOT, free_port, wait_for_port
from tests.settings import RUN_ID

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

KAFKA_CAPTURE = """
import asyncio, json, sys
import django
django.setup()
from tests import deadletter_flow as flow
from tests import deadletter_helpers as h
rows = asyncio.run(flow.kafka_dead_letters(sys.argv[1], sys.argv[2], [sys.argv[3].encode()]))
print(json.dumps({"id": rows[0].pk}))
"""

CAPTURE = """
import asyncio, json, sys
import django
django.setup()
from tests import deadletter_flow as flow
from tests import deadletter_helpers as h
made = asyncio.run(flow.rabbitmq_dead_letters(sys.argv[1], [sys.argv[2]], prefix="brw"))
rows = asyncio.run(flow.rows_of(made.dlq))
print(json.dumps({"id": rows[0].pk, "work": made.work, "dlq": made.dlq}))
"""


@pytest.fixture(scope="module")
def dlq_daphne(served_db, redis_url, rabbitmq_vhost, tmp_path_factory):
    clusters = tmp_path_factory.mktemp("dlq-browser") / "clusters.toml"
    clusters.write_text(
        "[[cluster]]\n"
        'slug = "test-rabbitmq"\n'
        'kind = "rabbitmq"\n'
        'name = "Test RabbitMQ"\n'
        f'amqp_url = "amqp://127.0.0.1:5672/{quote(rabbitmq_vhost, safe="")}"\n'
        'management_url = "http://127.0.0.1:15672"\n'
        'username = "guest"\n'
        'password_env = "MQB_TEST_BROWSER_DLQ_PASSWORD"\n'
        "[[cluster]]\n"
        'slug = "test-kafka"\n'
        'kind = "kafka"\n'
        'name = "Test Kafka"\n'
        'bootstrap_servers = "127.0.0.1:9092"\n'
    )
    env = {
        **served_db,
        "MQB_CLUSTERS_FILE": str(clusters),
        "MQB_TEST_BROWSER_DLQ_PASSWORD": "guest",
    }
    port = free_port()
    log = open(ROOT / "var" / "log" / f"test-daphne-dlq-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}", env
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield browser
        browser.close()


def login(page, url: str) -> None:
    page.goto(url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")


def test_it_requeues_a_dead_letter_by_click_and_it_arrives_at_its_origin(
    browser, dlq_daphne, rabbitmq_vhost
):
    url, env = dlq_daphne
    message_id = f"browser-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(
        [PYTHON, "-c", CAPTURE, rabbitmq_vhost, message_id],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    letter = json.loads(made.stdout.strip().splitlines()[-1])

    page = browser.new_page()
    page.goto(url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")

    page.click("nav >> text=Dead letters")
    page.wait_for_url("**/deadletters/")
    page.fill("input[name=dlq]", letter["dlq"])
    page.check("input[name=view]")
    page.click(".inbox-filter button[type=submit]")
    page.click(f"tr[data-letter='{letter['id']}'] >> text=#{letter['id']}")
    page.wait_for_selector("#requeue-button")
    assert '"order": 0' in page.inner_text("#letter-body")

    questions: list[str] = []

    def accept(dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.click("#requeue-button")
    page.wait_for_selector("#letter-status >> text=requeued")
    assert questions and questions[0].startswith(f"Requeue dead letter #{letter['id']}")
    assert "deadletter.requeue" in page.inner_text("table.audit")

    # Playwright's sync API keeps an event loop in this thread: read from another one.
    with ThreadPoolExecutor(1) as pool:
        [message] = pool.submit(asyncio.run, flow.take_all(rabbitmq_vhost, letter["work"])).result()
    assert message.message_id == message_id
    assert message.headers["x-mqboard-requeue-count"] == 1


@pytest.fixture
def kafka_topics(dlq_daphne):
    origin = h.create_topic(h.kafka_name("-orders"))
    dlq = h.create_topic(h.kafka_name("-dlq"))
    group = f"{dlq}-group"
    yield origin, dlq, group
    h.delete_group(group)
    h.delete_topics(origin, dlq)


@pytest.mark.kafka
def test_it_requeues_a_kafka_dead_letter_by_click_to_its_origin_topic(
    browser, dlq_daphne, kafka_topics
):
    url, env = dlq_daphne
    origin, dlq, group = kafka_topics
    key = f"browser-{uuid.uuid4().hex[:8]}"
    made = subprocess.run(
        [PYTHON, "-c", KAFKA_CAPTURE, origin, dlq, key],
        cwd=ROOT,
        env={**env, "MQB_KAFKA_CAPTURE_GROUP": group},
        check=True,
        capture_output=True,
        text=True,
        timeout=90,
    )
    letter_id = json.loads(made.stdout.strip().splitlines()[-1])["id"]

    page = browser.new_page()
    login(page, url)
    page.goto(f"{url}/deadletters/{letter_id}/")
    page.on("dialog", lambda dialog: dialog.accept())
    page.click("#requeue-button")
    page.wait_for_selector("#letter-status >> text=requeued")

    [(got_key, value, headers)] = flow.read_topic(origin, 1)
    assert got_key == key.encode()
    assert value == b'{"order": 0}'
    assert ("x-mqboard-requeue-count", b"1") in headers
