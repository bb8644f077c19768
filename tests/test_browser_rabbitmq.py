"""Debian's Chromium through the RabbitMQ pages under real Daphne: open, peek, purge."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import PYTHON, ROOT, free_port, wait_for_port
from tests.settings import RUN_ID
from tests.support.rabbitmq import declare, delete_queue, drain, publish, unique

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq]

SLUG = "browser-rabbit"


@pytest.fixture(scope="module")
def protected_daphne(served_db, redis_url, rabbitmq_vhost, tmp_path_factory):
    """Daphne watching one protected RabbitMQ cluster (purges need the typed name)."""
    clusters = tmp_path_factory.mktemp("rabbit-browser") / "clusters.toml"
    clusters.write_text(
        "[[cluster]]\n"
        f'slug = "{SLUG}"\n'
        'kind = "rabbitmq"\n'
        'name = "Browser RabbitMQ"\n'
        'amqp_url = "amqp://127.0.0.1:5672/"\n'
        'management_url = "http://127.0.0.1:15672"\n'
        'username = "guest"\n'
        'password_env = "MQB_TEST_BROWSER_RABBIT_PASSWORD"\n'
        "protected = true\n"
    )
    env = {
        **served_db,
        "MQB_CLUSTERS_FILE": str(clusters),
        "MQB_TEST_BROWSER_RABBIT_PASSWORD": "guest",
    }
    port = free_port()
    log = open(ROOT / "var" / "log" / f"test-daphne-rabbitmq-{RUN_ID}.log", "wb")  # noqa: SIM115
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
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def queue(rabbitmq_vhost):
    name = unique("browser")
    declare(rabbitmq_vhost, name)
    publish(
        rabbitmq_vhost,
        name,
        '{"order": 1, "note": "<b>not bold</b>"}',
        '{"order": 2}',
        '{"order": 3}',
        properties={"content_type": "application/json"},
    )
    yield name
    delete_queue(rabbitmq_vhost, name)


def test_it_opens_a_queue_peeks_with_confirmation_and_purges_with_the_typed_name(
    browser, protected_daphne, rabbitmq_vhost, queue
):
    page = browser.new_page()
    page.goto(protected_daphne + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(protected_daphne + "/")

    # The nav's RabbitMQ entry leads to the queue list; filter it down to our queue.
    page.click("nav >> text=RabbitMQ")
    page.wait_for_url(f"**/rabbitmq/{SLUG}/")
    page.fill("input[name=vhost]", rabbitmq_vhost)
    page.fill("input[name=name]", queue)
    page.click(".rmq-filters button[type=submit]")
    page.click(f"#queue-table >> text={queue}")
    page.wait_for_selector("#queue-name")
    assert page.inner_text("#queue-name") == queue

    # Peeking: the warning is there, and the confirmation box must be ticked.
    page.click("text=Peek at messages")
    warning = page.inner_text("#peek-warning")
    assert "marked redelivered" in warning and "another order" in warning
    page.click("#peek-form button[type=submit]")
    assert page.locator("article.message").count() == 0  # the required box stopped it
    page.check("input[name=confirm]")
    page.click("#peek-form button[type=submit]")
    page.wait_for_selector("article.message")
    assert page.locator("article.message").count() == 3
    first_body = page.inner_text("#message-1 pre.body")
    assert '"note": "<b>not bold</b>"' in first_body  # shown as text, not as markup
    assert page.locator("#message-1 pre.body b").count() == 0

    # Purging on a protected cluster: the button waits for the exact name.
    page.click(f"h1 >> text={queue}")
    page.wait_for_selector("#purge")
    button = page.locator("#purge button[type=submit]")
    page.fill("input[name=confirm_name]", queue + "x")
    assert button.is_disabled()
    page.fill("input[name=confirm_name]", queue)
    assert button.is_enabled()
    button.click()
    page.wait_for_selector(".flash .success")
    assert "Purged 3 ready message(s)" in page.inner_text(".flash")
    assert drain(rabbitmq_vhost, queue) == []
    page.close()
