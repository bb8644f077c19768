"""A local webhook receiver for the demo's alert notifications: shows what arrived.

``python scripts/alert_sink.py [--port 8025]`` serves on 127.0.0.1 only (standard library,
no Django):

* ``POST`` to any path: a notification of a ``webhook`` channel. It is kept when its
  ``X-Mqboard-Signature`` is HMAC-SHA256 over ``<X-Mqboard-Timestamp>.<body>`` with the
  shared secret and the timestamp is at most ``MAX_SKEW`` seconds away (answer 204);
  otherwise it is kept marked *refused*, with the reason, and answered 401. A repeated
  notification id (a retried send) is marked *duplicate*.
* ``GET /``: the last ``KEEP`` notifications, newest first, every value HTML-escaped;
  it reloads itself every few seconds (a meta refresh: the page has no script).
* ``GET /notifications.json``: the same as JSON.

The secret comes from ``MQB_DEMO_SINK_SECRET`` or the file ``MQB_DEMO_SINK_SECRET_FILE``;
without one every notification is refused. Bodies over ``MAX_BODY`` bytes are refused
unread. Nothing is written to disk.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import html
import json
import os
import sys
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

KEEP = 200
MAX_BODY = 1 << 20
MAX_SKEW = 300.0
SHOWN_BODY = 2000
ID_HEADER = "X-Mqboard-Notification-Id"
SIGNATURE_HEADER = "X-Mqboard-Signature"
TIMESTAMP_HEADER = "X-Mqboard-Timestamp"
CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"


@dataclass
class Notification:
    received_at: str
    path: str
    notification_id: str
    verdict: str  # accepted | duplicate | refused
    reason: str
    event: str
    rule: str
    kind: str
    cluster: str
    entity: str
    value: str
    body: str


def expected_signature(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def check(secret: str, headers: Any, body: bytes, now: float) -> str:
    """Why the notification is refused; '' when its signature and timestamp hold."""
    if not secret:
        return "the sink has no secret"
    signature = headers.get(SIGNATURE_HEADER) or ""
    timestamp = headers.get(TIMESTAMP_HEADER) or ""
    if not signature or not timestamp:
        return "not signed"
    try:
        skew = abs(now - float(timestamp))
    except ValueError:
        return "bad timestamp"
    if skew > MAX_SKEW:
        return "timestamp too old or too new"
    if not hmac.compare_digest(expected_signature(secret, timestamp, body), signature):
        return "bad signature"
    return ""


def describe(body: bytes) -> dict[str, str]:
    """The fields the page shows, read from a webhook message (anything else: empty).

    A message carries one rule's notifications on one cluster: ``firing`` and
    ``resolved`` lists of ``{"event", "alert": {...}}``. The row shows the message's
    status, its rule and cluster, and each alert's entity (``event entity`` when its
    event is not the message's status) and value.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    group = data.get("group")
    group = group if isinstance(group, dict) else {}
    items: list[dict[str, Any]] = []
    for section in ("firing", "resolved"):
        found = data.get(section)
        if isinstance(found, list):
            items.extend(i for i in found if isinstance(i, dict))
    alerts = [i["alert"] if isinstance(i.get("alert"), dict) else {} for i in items]
    kinds = sorted({str(a.get("kind")) for a in alerts if a.get("kind") is not None})
    status = data.get("status")
    fields = {
        "event": status,
        "rule": group.get("rule"),
        "cluster": group.get("cluster"),
        "kind": ", ".join(kinds) or None,
        "entity": "; ".join(
            str(a.get("entity") or "")
            if i.get("event") == status
            else f"{i.get('event') or ''} {a.get('entity') or ''}".strip()
            for i, a in zip(items, alerts, strict=True)
        )
        or None,
        "value": "; ".join("" if a.get("value") is None else str(a.get("value")) for a in alerts)
        or None,
    }
    return {k: "" if v is None else str(v)[:500] for k, v in fields.items()}


class Store:
    """The last ``KEEP`` notifications and the ids seen, under one lock."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.items: deque[Notification] = deque(maxlen=KEEP)
        self.seen: dict[str, None] = {}
        self.lock = threading.Lock()

    def add(self, path: str, headers: Any, body: bytes) -> Notification:
        reason = check(self.secret, headers, body, time.time())
        notification_id = str(headers.get(ID_HEADER) or "")[:200]
        fields = describe(body)
        with self.lock:
            verdict = "refused" if reason else "accepted"
            if not reason and notification_id in self.seen:
                verdict = "duplicate"
            if not reason and notification_id:
                self.seen[notification_id] = None
                while len(self.seen) > 10 * KEEP:
                    del self.seen[next(iter(self.seen))]
            item = Notification(
                received_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
                path=path[:200],
                notification_id=notification_id,
                verdict=verdict,
                reason=reason,
                event=fields.get("event", ""),
                rule=fields.get("rule", ""),
                kind=fields.get("kind", ""),
                cluster=fields.get("cluster", ""),
                entity=fields.get("entity", ""),
                value=fields.get("value", ""),
                body=body[:SHOWN_BODY].decode("utf-8", errors="replace"),
            )
            self.items.appendleft(item)
        return item

    def snapshot(self) -> list[Notification]:
        with self.lock:
            return list(self.items)


COLUMNS = ("received_at", "verdict", "reason", "event", "rule", "kind", "cluster", "entity",
           "value", "notification_id", "body")  # fmt: skip


def page(items: list[Notification]) -> bytes:
    e = html.escape
    rows = "".join(
        "<tr>" + "".join(f"<td>{e(str(getattr(item, c)))}</td>" for c in COLUMNS) + "</tr>\n"
        for item in items
    )
    head = "".join(f"<th>{e(c.replace('_', ' '))}</th>" for c in COLUMNS)
    table = (
        f"<table border=1><thead><tr>{head}</tr></thead><tbody>\n{rows}</tbody></table>"
        if items
        else "<p>Nothing received yet.</p>"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta http-equiv="refresh" content="5"><title>mqboard alert sink</title></head><body>'
        f"<h1>Alert notifications received</h1><p>The last {KEEP}, newest first;"
        ' <a href="/notifications.json">JSON</a>. Refused: a missing or bad signature.</p>'
        f"{table}</body></html>"
    ).encode()


def handler_for(store: Store) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "mqboard-alert-sink"

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._answer(413, b"too large\n", "text/plain")
                return
            body = self.rfile.read(length)
            item = store.add(self.path, self.headers, body)
            if item.verdict == "refused":
                self._answer(401, f"refused: {item.reason}\n".encode(), "text/plain")
            else:
                self._answer(204, b"", "")

        def do_GET(self) -> None:
            items = store.snapshot()
            if self.path.split("?")[0] == "/notifications.json":
                data = json.dumps({"notifications": [asdict(i) for i in items]}).encode()
                self._answer(200, data, "application/json")
            elif self.path.split("?")[0] == "/":
                self._answer(200, page(items), "text/html; charset=utf-8")
            else:
                self._answer(404, b"not found\n", "text/plain")

        def _answer(self, status: int, data: bytes, content_type: str) -> None:
            self.send_response(status)
            if content_type:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if data:
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            sys.stderr.write(f"alert sink: {self.address_string()} {format % args}\n")

    return Handler


def read_secret() -> str:
    secret = os.environ.get("MQB_DEMO_SINK_SECRET", "")
    path = os.environ.get("MQB_DEMO_SINK_SECRET_FILE", "")
    if not secret and path:
        secret = Path(path).read_text().strip()
    return secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("MQB_DEMO_SINK_PORT", 8025)))
    args = parser.parse_args(argv)
    secret = read_secret()
    if not secret:
        print("alert sink: no MQB_DEMO_SINK_SECRET(_FILE): everything is refused", file=sys.stderr)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler_for(Store(secret)))
    server.daemon_threads = True
    print(f"alert sink: listening on http://127.0.0.1:{server.server_address[1]}/", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
