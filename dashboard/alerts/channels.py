"""Channels: the request a notification becomes, per channel kind, and its secrets.

* ``webhook``: the notification's JSON as is, signed: ``X-Mqboard-Signature:
  sha256=<hex>`` is HMAC-SHA256 over ``<X-Mqboard-Timestamp>.<body>`` with the
  channel's secret (a receiver recomputes it, and refuses old timestamps);
* ``slack``: a Slack incoming-webhook body (``text`` plus a section block);
* ``teams``: a Microsoft Teams incoming-webhook ``MessageCard``;
* ``email``: a plain-text mail over SMTP. The channel's "URL" is an SMTP URL:
  ``smtp://[user:password@]host[:port]/?from=alerts@example.com&to=a@example.com,b@example.com``
  (``smtps://`` for TLS from the start, ``&starttls=1`` to upgrade a plain one); its
  ``Message-ID`` is made from the notification id.

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
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

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
    schemes = ("smtp://", "smtps://") if channel.kind == AlertChannel.Kind.EMAIL else ()
    if not url.startswith(("http://", "https://", *schemes)):
        raise ChannelError("the URL's scheme does not fit the channel", permanent=True)
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
        raise ChannelError(f"{channel.kind} channels are not sent over HTTP", permanent=True)
    data = json.dumps(body, separators=(",", ":"), sort_keys=True).encode()
    if channel.kind == AlertChannel.Kind.WEBHOOK:
        secret = read_secret(channel.secret_env, channel.secret_file, "secret")
        if secret:
            timestamp = str(int(now))
            headers[TIMESTAMP_HEADER] = timestamp
            headers[SIGNATURE_HEADER] = sign(secret, timestamp, data)
    return Request(url, data, headers)


@dataclass(frozen=True)
class Mail:
    host: str
    port: int
    tls: bool
    starttls: bool
    username: str
    password: str
    sender: str
    recipients: tuple[str, ...]


def parse_smtp_url(url: str) -> Mail:
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    sender = (query.get("from") or [""])[0]
    recipients = tuple(
        r.strip() for value in query.get("to", []) for r in value.split(",") if r.strip()
    )
    if not parts.hostname or not sender or not recipients:
        raise ChannelError("the SMTP URL needs a host, from= and to=", permanent=True)
    tls = parts.scheme == "smtps"
    try:
        port = parts.port or (465 if tls else 25)
    except ValueError:
        raise ChannelError("the SMTP URL's port is not a number", permanent=True) from None
    return Mail(
        host=parts.hostname,
        port=port,
        tls=tls,
        starttls=(query.get("starttls") or ["0"])[0] in ("1", "true", "yes"),
        username=unquote(parts.username or ""),
        password=unquote(parts.password or ""),
        sender=sender,
        recipients=recipients,
    )


def email_message(mail: Mail, payload: dict[str, Any]) -> EmailMessage:
    message = EmailMessage()
    notification_id = str(payload.get("id", ""))
    message["Subject"] = summary(payload)[:200]
    message["From"] = mail.sender
    message["To"] = ", ".join(mail.recipients)
    message["Message-ID"] = f"<{notification_id}@mqboard>"
    message[ID_HEADER] = notification_id
    alert = payload.get("alert", {})
    lines = [summary(payload), ""]
    lines += [f"{key}: {alert.get(key)}" for key in ("rule", "kind", "cluster", "entity", "value")]
    lines += ["", json.dumps(payload, indent=2, sort_keys=True)]
    message.set_content("\n".join(lines))
    return message


def send_email(channel: AlertChannel, payload: dict[str, Any], timeout: float) -> None:
    """Send one notification by mail; an SMTP or network failure is a ChannelError."""
    mail = parse_smtp_url(channel_url(channel))
    message = email_message(mail, payload)
    smtp_class = smtplib.SMTP_SSL if mail.tls else smtplib.SMTP
    try:
        with smtp_class(mail.host, mail.port, timeout=timeout) as smtp:
            if mail.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if mail.username:
                smtp.login(mail.username, mail.password)
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(f"the SMTP server answered {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"not delivered: {type(exc).__name__}") from None
