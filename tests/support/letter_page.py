"""Helpers for browser tests of a dead letter's page: letters stored as the capture would
store them (a ``python -c`` script in the served database), queues to requeue to, and a
logged-in operator page whose confirmations go through the page's own dialog."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from tests.conftest import PYTHON, ROOT
from tests.support import deadletter_flow as flow
from tests.support import deadletters as h

SEED = """
import base64, json, sys
import django
django.setup()
from django.utils import timezone
from dashboard.core.clusters import sync_cluster_rows
from dashboard.models import DeadLetter, Job
spec = json.loads(sys.stdin.read())
clusters = sync_cluster_rows()
ids = []
for row in spec.get("letters", []):
    row = dict(row)
    body = base64.b64decode(row.pop("body_b64", ""))
    row.setdefault("body_size", len(body))
    row.setdefault("first_failed_at", timezone.now())
    letter = DeadLetter.objects.create(cluster=clusters["test-rabbitmq"], body=body, **row)
    ids.append(letter.pk)
for pk, status in spec.get("status", []):
    DeadLetter.objects.filter(pk=pk).update(status=status)
for row in spec.get("jobs", []):
    ids.append(Job.objects.create(**row).pk)
print(json.dumps(ids))
"""

COME_BACK = """
import json, sys
import django
django.setup()
from brokers.base.deadletters import SameMessage
from dashboard.deadletters.verdict import mark_failed_again
from dashboard.models import DeadLetter
old = list(DeadLetter.objects.filter(pk__in=json.loads(sys.stdin.read())))
rows = []
for letter in old:
    new = DeadLetter.objects.create(
        cluster=letter.cluster, vhost=letter.vhost, dlq=letter.dlq,
        capture_key=letter.capture_key + ":again", message_id=letter.message_id,
        origin_exchange=letter.origin_exchange, origin_routing_key=letter.origin_routing_key,
        origin_queue=letter.origin_queue, reason="rejected", fingerprint=letter.fingerprint,
        body=bytes(letter.body), body_size=letter.body_size, properties=letter.properties,
    )
    rows.append({"capture_key": new.capture_key, "message_id": new.message_id,
                 "fingerprint": new.fingerprint})
marked = mark_failed_again(old[0].cluster_id, SameMessage.MESSAGE_ID, rows)
print(json.dumps({"marked": marked, "new": [r.pk for r in DeadLetter.objects.filter(
    capture_key__in=[r["capture_key"] for r in rows]).order_by("pk")]}))
"""


def run_script(env: dict[str, str], script: str, arg: Any) -> Any:
    done = subprocess.run(
        [PYTHON, "-c", script],
        input=json.dumps(arg),
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def declare_queue(vhost: str) -> str:
    name = h.unique("ui-letter")
    with h.mgmt() as client:
        client.put(
            f"/api/queues/{h.q(vhost)}/{h.q(name)}", json={"durable": False}
        ).raise_for_status()
    return name


def letter_row(queue: str, dlq: str, body: bytes, **extra: Any) -> dict[str, Any]:
    message_id = extra.pop("message_id", h.unique("msg"))
    row: dict[str, Any] = {
        "vhost": extra.pop("vhost"),
        "dlq": dlq,
        "capture_key": f"ui:{uuid.uuid4().hex}",
        "message_id": message_id,
        "origin_exchange": "",
        "origin_routing_key": queue,
        "origin_queue": queue,
        "reason": "rejected",
        "fingerprint": extra.pop("fingerprint", uuid.uuid4().hex[:16]),
        "properties": {"message_id": message_id, "delivery_mode": 2, **extra.pop("props", {})},
        "headers": extra.pop("headers", {}),
        "body_b64": base64.b64encode(body).decode(),
    }
    row.update(extra)
    return row


def take(vhost: str, queue: str, expect: int = 1) -> list[Any]:
    # Playwright's sync API keeps an event loop in this thread: read from another one.
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, flow.take_all(vhost, queue, expect)).result()


def login(browser: Any, url: str) -> tuple[Any, list[str]]:
    """A logged-in operator page and the native dialogs it raised (there must be none)."""
    page = browser.new_page()
    native: list[str] = []

    def accept(dialog: Any) -> None:
        native.append(dialog.message)
        dialog.accept()

    page.on("dialog", accept)
    page.goto(url + "/login/")
    page.fill("input[name=username]", "olga")
    page.fill("input[name=password]", "browser-pass-1")
    page.click("button[type=submit]")
    page.wait_for_url(url + "/")
    return page, native


def confirm(page: Any, button: Any) -> None:
    """Click a data-confirm button and accept the page's own dialog when it shows one."""
    with page.expect_navigation():
        button.click()
        try:
            page.wait_for_selector("dialog[open]", timeout=1500)
        except Exception:
            return
        page.locator(
            "dialog[open] .btn-primary, dialog[open] .btn-danger, dialog[open] [value=confirm]"
        ).first.click()
