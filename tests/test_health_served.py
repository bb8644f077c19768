"""Health and the overview under load, against a real Daphne, collector and brokers.

The dashboard reaches RabbitMQ and Kafka through counting TCP proxies, so every broker
connection it opens is counted from outside (nothing in the product is patched), and
RabbitMQ's management API lists the vhost's connections before and after.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import PYTHON, ROOT, free_port, stop_process, wait_for_port
from tests.settings import RUN_ID
from tests.support.health import CountingProxy, cluster_entry, logged_in, vhost_connections
from tests.support.letter_page import login
from tests.support.metrics import collector_process, log_tail, wait_for

pytestmark = [pytest.mark.rabbitmq, pytest.mark.kafka, pytest.mark.redis]

STOPPABLE = "stoppable-rabbitmq"


@pytest.fixture(scope="module")
def served(served_db, redis_url, rabbitmq_vhost, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """Daphne watching three clusters through counting proxies: its URL, env and proxies."""
    proxies = {
        "amqp": CountingProxy(5672),
        "mgmt": CountingProxy(15672),
        "kafka": CountingProxy(9092),
        "stop_amqp": CountingProxy(5672),
        "stop_mgmt": CountingProxy(15672),
    }
    for proxy in proxies.values():
        proxy.start()
    clusters = tmp_path_factory.mktemp("health") / "clusters.toml"
    clusters.write_text(
        cluster_entry("test-rabbitmq", proxies["amqp"].port, proxies["mgmt"].port, rabbitmq_vhost)
        + cluster_entry(
            STOPPABLE, proxies["stop_amqp"].port, proxies["stop_mgmt"].port, rabbitmq_vhost
        )
        + "[[cluster]]\n"
        'slug = "test-kafka"\n'
        'kind = "kafka"\n'
        'name = "Test Kafka"\n'
        f'bootstrap_servers = "127.0.0.1:{proxies["kafka"].port}"\n'
        "timeout = 2.0\n"
    )
    env = {
        **served_db,
        "MQB_CLUSTERS_FILE": str(clusters),
        "MQB_TEST_HEALTH_PASSWORD": "guest",
        "MQB_HEALTH_CHECK_GAP": "0.5",
        "MQB_HEALTH_STALE_AFTER": "4",
    }
    port = free_port()
    log = open(ROOT / "var" / "log" / f"test-daphne-health-{RUN_ID}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [PYTHON, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "dashboard.asgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        yield {"url": f"http://127.0.0.1:{port}", "env": env, "proxies": proxies}
    finally:
        stop_process(process)
        log.close()
        for proxy in proxies.values():
            proxy.stop()


def health(http: httpx.Client) -> dict[str, dict[str, Any]]:
    response = http.get("/api/clusters/health")
    assert response.status_code == 200, response.text[:300]
    return {c["slug"]: c for c in response.json()["clusters"]}


def wait_for_collector_check(http: httpx.Client, process: subprocess.Popen[bytes]) -> None:
    def checked() -> bool | None:
        assert process.poll() is None, log_tail(process.log_path)  # type: ignore[attr-defined]
        found = health(http)
        return all(c["source"] == "collector" for c in found.values()) or None

    wait_for(checked, timeout=30, what="the collector's first check of every cluster")


async def burst(url: str, cookies: httpx.Cookies, paths: list[str]) -> list[httpx.Response]:
    """Every path at once, each on a keep-alive connection of its own."""
    limits = httpx.Limits(max_connections=len(paths))
    async with httpx.AsyncClient(base_url=url, cookies=cookies, timeout=60, limits=limits) as c:
        return list(await asyncio.gather(*(c.get(p) for p in paths)))


def counts(proxies: dict[str, CountingProxy]) -> dict[str, int]:
    return {name: proxy.accepted for name, proxy in proxies.items()}


def test_fifty_concurrent_viewers_open_no_broker_connection(served, rabbitmq_vhost):
    http = logged_in(served["url"])
    with collector_process(served["env"], "--only", "health", log_name="health") as collector:
        wait_for_collector_check(http, collector)
    before, connections_before = counts(served["proxies"]), vhost_connections(rabbitmq_vhost)

    responses = asyncio.run(
        burst(served["url"], http.cookies, ["/api/clusters/health"] * 50 + ["/"] * 50)
    )

    assert counts(served["proxies"]) == before
    assert vhost_connections(rabbitmq_vhost) <= connections_before
    assert [r.status_code for r in responses] == [200] * 100
    for answer in (r.json() for r in responses[:50]):
        by_slug = {c["slug"]: c for c in answer["clusters"]}
        assert by_slug["test-rabbitmq"]["ok"] and by_slug["test-kafka"]["ok"]
        assert {c["source"] for c in by_slug.values()} == {"collector"}
        assert all(c["age_seconds"] >= 0 for c in by_slug.values())
    page = responses[-1].text
    assert page.count('data-source="collector"') == 3
    assert page.count('<time class="when" datetime=') >= 3 and page.count(" ago)</noscript>") == 3
    http.close()


def test_check_now_is_one_live_check_shared_by_everyone_asking(served):
    http = logged_in(served["url"])
    token = http.cookies["csrftoken"]
    time.sleep(0.6)  # past MQB_HEALTH_CHECK_GAP since any earlier check
    earlier = health(http)["test-rabbitmq"]
    before = counts(served["proxies"])

    async def ask_together() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=served["url"], cookies=http.cookies, timeout=60
        ) as client:
            return list(
                await asyncio.gather(
                    *(
                        client.post(
                            "/api/clusters/test-rabbitmq/check", headers={"X-CSRFToken": token}
                        )
                        for _ in range(10)
                    )
                )
            )

    answers = asyncio.run(ask_together())
    assert [a.status_code for a in answers] == [200] * 10, answers[0].text[:300]
    checked = {a.json()["checked_at"] for a in answers}
    assert len(checked) == 1, checked
    assert {a.json()["source"] for a in answers} == {"live"}
    assert checked != {earlier["checked_at"]}
    after = counts(served["proxies"])
    assert after["amqp"] - before["amqp"] == 1
    assert after["kafka"] == before["kafka"]

    # Asked again at once: the same check answers, and no connection is opened.
    again = http.post("/api/clusters/test-rabbitmq/check", headers={"X-CSRFToken": token})
    assert again.status_code == 200
    assert again.json()["checked_at"] in checked
    assert again.json()["source"] == "collector"
    assert counts(served["proxies"]) == after
    assert health(http)["test-rabbitmq"]["checked_at"] in checked
    http.close()


def test_a_stopped_broker_shows_down_after_the_collectors_next_check(served):
    http = logged_in(served["url"])
    proxies = served["proxies"]
    with collector_process(
        served["env"], "--only", "health", "--interval", "1", log_name="health-stop"
    ) as collector:
        wait_for_collector_check(http, collector)
        assert health(http)[STOPPABLE]["ok"]
        proxies["stop_amqp"].stop()
        proxies["stop_mgmt"].stop()
        try:
            down = wait_for(
                lambda: (c := health(http)[STOPPABLE]) and (None if c["ok"] else c),
                timeout=30,
                what="the stopped broker shown down",
            )
            page = http.get("/").text
        finally:
            proxies["stop_amqp"].start()
            proxies["stop_mgmt"].start()
    assert down["source"] == "collector"
    assert down["code"] != "ok" and down["message"]
    assert down["age_seconds"] is not None and down["age_seconds"] >= 0
    assert down["down_since"] and down["overview"] is None
    card = page.split(f'data-cluster="{STOPPABLE}"')[1].split("</article>")[0]
    assert 'data-status="down">Unavailable</span>' in card
    assert "<noscript> (checked " in card and " ago)</noscript>" in card
    http.close()


@pytest.mark.browser
def test_an_operator_checks_now_and_the_card_turns_stale_without_a_reload(served, browser):
    page, native = login(browser, served["url"])
    card = page.locator('.card[data-cluster="test-kafka"]')
    with page.expect_navigation():
        card.get_by_role("button", name="Check Test Kafka now").click()
    assert page.url.endswith("/?checked=test-kafka#cluster-test-kafka")
    assert page.get_by_role("status").filter(has_text="Checked Test Kafka just now.").count() == 1
    assert card.locator('[data-field="status"] .badge').inner_text() == "Healthy"
    assert card.locator('[data-field="stale"]').is_hidden()
    assert "just now" in card.locator('[data-field="checked_at"] time').inner_text()
    # No collector runs: past MQB_HEALTH_STALE_AFTER (4 s) the open page says so by itself.
    page.wait_for_function(
        "() => document.querySelector('.card[data-cluster=\"test-kafka\"]')"
        ".dataset.stale === 'true'",
        timeout=20_000,
    )
    assert card.locator('[data-field="stale"] .badge').inner_text() == "Stale"
    assert card.locator('[data-field="stale"]').is_visible()
    assert native == []
    page.close()
