"""Channels: the request a notification becomes, per channel kind, and its secrets.

* ``webhook``: the notification's JSON as is, signed: ``X-Mqboard-Signature:
  sha256=<hex>`` is HMAC-SHA256 over ``<X-Mqboard-Timestamp>.<body>`` with the
  channel's secret (a receiver recomputes it, and refuses old timestamps);
* ``slack``: a Slack incoming-webhook body (``text`` plus a section block);
* ``teams``: a Microsoft Teams incoming-webhook ``MessageCard``.

Every request carries ``X-Mqboard-Notification-Id``, the outbox row's stable id
(also ``id`` in the webhook's JSON): a retried notification has the same one, so a
receiver deduplicates on it.

Secrets: a channel's URL (which holds the token of Slack and Teams webhooks) and its
HMAC secret live only in the environment (``url_env``, ``secret_env``) or in a file
(``url_file``, ``secret_file``), read when a notification is sent; they are never
stored, logged, or put in an error message (errors name the variable or file).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashboard.models import AlertChannel

ID_HEADER = "X-Mqboard-Notification-Id"
SIGNATURE_HEADER = "X-Mqboard-Signature"
TIMESTAMP_HEADER = "X-Mqboard-Timestamp"


class ChannelError(Exception):
    """A notification that cannot be sent; ``permanent`` ones are not retried."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.permanent = permanent


def read_secret(env: str, file: str, what: str) -> str:
    """The value of variable ``env``, else the contents of ``file``; '' when neither is set."""
    if env:
        value = os.environ.get(env, "")
        if value:
            return value
    if file:
        try:
            return Path(file).read_text().strip()
        except OSError as exc:
            raise ChannelError(f"{what} file {file!r} cannot be read: {exc.strerror}") from None
    return ""


def channel_url(channel: AlertChannel) -> str:
    url = read_secret(channel.url_env, channel.url_file, "URL")
    if not url:
        where = channel.url_env or channel.url_file or "nothing"
        raise ChannelError(f"no URL: {where} is not set")
    if not url.startswith(("http://", "https://")):
        raise ChannelError("the URL is not http(s)")
    return url


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return f"sha256={digest.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    """What a receiver does (and the tests): recompute and compare in constant time."""
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def summary(payload: dict[str, Any]) -> str:
    alert = payload.get("alert", {})
    state = "RESOLVED" if payload.get("status") == "resolved" else "FIRING"
    value = alert.get("value")
    shown = "unknown" if value is None else f"{value:g}"
    return (
        f"[{state}] {alert.get('rule')}: {alert.get('entity')} on {alert.get('cluster')}"
        f" (value {shown})"
    )


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def slack_body(payload: dict[str, Any]) -> dict[str, Any]:
    text = summary(payload)
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "plain_text", "text": text}}],
    }


def teams_body(payload: dict[str, Any]) -> dict[str, Any]:
    resolved = payload.get("status") == "resolved"
    alert = payload.get("alert", {})
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": summary(payload),
        "title": summary(payload),
        "themeColor": "2EB886" if resolved else "D63333",
        "sections": [
            {
                "facts": [
                    {"name": key, "value": str(alert.get(key))}
                    for key in ("rule", "kind", "cluster", "entity", "value", "threshold")
                ]
            }
        ],
    }


def build_request(channel: AlertChannel, payload: dict[str, Any], now: float) -> Request:
    """The HTTP request of one notification to one channel (email is not HTTP)."""
    url = channel_url(channel)
    headers = {"Content-Type": "application/json", ID_HEADER: str(payload.get("id", ""))}
    if channel.kind == AlertChannel.Kind.SLACK:
        body = slack_body(payload)
    elif channel.kind == AlertChannel.Kind.TEAMS:
        body = teams_body(payload)
    elif channel.kind == AlertChannel.Kind.WEBHOOK:
        body = payload
    else:
        raise ChannelError(f"{channel.kind} channels are not supported yet", permanent=True)
    data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    if channel.kind == AlertChannel.Kind.WEBHOOK:
        secret = read_secret(channel.secret_env, channel.secret_file, "secret")
        if secret:
            timestamp = str(int(now))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, data)
    return Request(url, data, headers)
