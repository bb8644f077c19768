"""Content-Security-Policy: every main page works in Chromium under the policy, no violations.

The pages load scripts and styles from static files only (no inline script,
no style attributes, no eval); live pages open their websockets to the same
origin, which 'self' allows under CSP 3.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from urllib.parse import quote, urlencode

import httpx
import pytest

from tests.conftest import PYTHON, ROOT
from tests.support import deadletters as h
from tests.support.deadletter_flow import CAPTURE

pytestmark = [pytest.mark.browser, pytest.mark.rabbitmq, pytest.mark.kafka]

ADMIN_PASSWORD = "csp-admin-pass-3"

# Runs before any page script, outside the page's policy: remembers violations.
RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__csp.push({directive: e.violatedDirective, blocked: e.blockedURI,
                     source: e.sourceFile, line: e.lineNumber, sample: e.sample});
});
"""


def visit(page, url: str) -> list[str]:
    """Open ``url``; the CSP violations it and its scripts (websockets too) caused."""
    response = page.goto(url)
    page.wait_for_load_state("load")
    page.wait_for_timeout(1500)  # live pages: websocket connects and first pushes
    violations = [json.dumps(v) for v in page.evaluate("window.__csp")]
    assert response is not None and response.status == 200, (url, response and response.status)
    return violations


@pytest.fixture(scope="module")
def entities(dlq_daphne, rabbitmq_vhost):
    _, env = dlq_daphne
    made = subprocess.run(
        [PYTHON, "-c", CAPTURE, rabbitmq_vhost, f"csp-{uuid.uuid4().hex[:8]}"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    letter = json.loads(made.stdout.strip().splitlines()[-1])
    topic = h.create_topic(h.kafka_name("-csp"))
    h.produce(topic, [(b"k1", b'{"order": 1}', [("trace", b"abc")]), (None, b"plain", [])])
    subprocess.run(
        [PYTHON, "manage.py", "ensure_user", "csp-admin", "--role", "admin"],
        cwd=ROOT, env={**env, "MQB_USER_PASSWORD": ADMIN_PASSWORD}, check=True,
        capture_output=True,
    )  # fmt: skip
    yield {"letter": letter, "topic": topic, "vhost": rabbitmq_vhost}
    h.delete_topics(topic)


def watch(page, console: list[str], broken: list[str]) -> None:
    page.on("console", lambda m: console.append(m.text) if "Security Policy" in m.text else None)
    page.on(
        "response",
        lambda r: (
            broken.append(f"{r.status} {r.url}")
            if "/static/" in r.url and r.status not in (200, 304)
            else None
        ),
    )
    page.on(
        "requestfailed",
        lambda r: broken.append(f"{r.failure} {r.url}") if "/static/" in r.url else None,
    )


def log_in(page, url: str, path: str, username: str, password: str) -> None:
    page.goto(url + path)
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.locator("form [type=submit]").last.click()
    page.wait_for_load_state("load")


def test_it_sends_the_policy(dlq_daphne):
    url, _ = dlq_daphne
    policy = httpx.get(url + "/login/").headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}

    assert directives["default-src"] == ["'self'"]
    assert directives["script-src"] == ["'self'"] and directives["style-src"] == ["'self'"]
    assert directives["connect-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"] and directives["object-src"] == ["'none'"]


def test_every_main_page_runs_without_a_violation(browser, dlq_daphne, entities):
    url, _ = dlq_daphne
    vhost, letter, topic = entities["vhost"], entities["letter"], entities["topic"]
    queue = urlencode({"vhost": vhost, "name": letter["work"]})
    paths = [
        "/",
        "/rabbitmq/test-rabbitmq/",
        f"/rabbitmq/test-rabbitmq/queue?{queue}",
        "/clusters/test-kafka/kafka/topics/",
        f"/clusters/test-kafka/kafka/topics/{quote(topic)}/",
        f"/clusters/test-kafka/kafka/topics/{quote(topic)}/messages/",
        "/deadletters/",
        f"/deadletters/{letter['id']}/",
        "/deadletters/queues/",
        "/live/",
        "/live/test-rabbitmq/",
        f"/live/test-rabbitmq/entity?type=queue&{queue}",
        "/consumers/",
        "/jobs/",
    ]
    context = browser.new_context()
    context.add_init_script(RECORD_VIOLATIONS)
    console: list[str] = []
    broken: list[str] = []  # a script or style that did not load would prove nothing
    page = context.new_page()
    watch(page, console, broken)

    found: dict[str, list[str]] = {"/login/": visit(page, url + "/login/")}
    log_in(page, url, "/login/", "olga", "browser-pass-1")
    for path in paths:
        found[path] = visit(page, url + path)
    page.goto(url + paths[5])
    records = page.locator("#records tbody tr").count()
    # kafka.js ran: it shows only the fields of the chosen start.
    script_ran = page.evaluate(
        """() => [...document.querySelectorAll("[data-when]")].map(
            (el) => el.hidden === (el.dataset.when !== document.getElementById("start").value))"""
    )
    pages_console = list(console)
    # And the recorder works: an inline script is refused and reported.
    page.evaluate("""() => { const s = document.createElement("script");
        s.textContent = "window.inlineRan = true"; document.body.append(s); }""")
    page.wait_for_timeout(300)
    control = page.evaluate("[window.inlineRan, window.__csp.map(v => v.directive)]")
    control_console = console[len(pages_console) :]
    del console[:]
    context.close()

    admin = browser.new_context()
    admin.add_init_script(RECORD_VIOLATIONS)
    page = admin.new_page()
    watch(page, console, broken)
    found["/admin/login/"] = visit(page, url + "/admin/login/")
    log_in(page, url, "/admin/login/", "csp-admin", ADMIN_PASSWORD)
    for path in (
        "/admin/",
        "/admin/dashboard/deadletter/",
        f"/admin/dashboard/deadletter/{letter['id']}/change/",
        "/admin/dashboard/auditentry/",
        "/audit/",
    ):
        found[path] = visit(page, url + path)
    admin.close()

    assert {path: v for path, v in found.items() if v} == {}
    assert pages_console == [] and console == []
    assert broken == []
    assert records >= 2  # a row per record (and detail rows)
    assert script_ran == [True, True]
    assert control == [None, ["script-src-elem"]] and len(control_console) == 1
