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

A request carries one *message*: the due notifications of one group (one rule on one
cluster) to the channel (:func:`group_message`), in ``firing`` and ``resolved``
sections; Slack, Teams and mail list every alert too. ``X-Mqboard-Notification-Id``
(also ``id`` in the webhook's JSON, the mail's ``Message-ID``) is the message's stable
id: the notification's own id in a message of one, else a hash of the sorted ids, so a
message sent again has the same one. Every notification keeps its own stable id in the
body (``notification_ids``, and ``id`` of each entry): after a sender died mid-send,
a later message may hold the same notifications with more, and a receiver that
deduplicates per alert sees each once.

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
SHOWN = 50
"""Alerts listed one per line in a chat message or a mail; the rest are counted."""
TEAMS_SECTIONS = 10
"""Teams shows a card's first sections only: alerts beyond these are counted."""


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


def message_id(notification_ids: list[str]) -> str:
    """A message's stable id: its one notification's id, else a hash of all of them."""
    if len(notification_ids) == 1:
        return notification_ids[0]
    joined = "\n".join(sorted(notification_ids)).encode()
    return hashlib.sha256(joined).hexdigest()[:40]


def group_message(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """The one message of a group's notifications (the webhook's JSON as sent).

    Made from the rows alone, so a message sent again is the same bytes: ``id`` (also
    in ``X-Mqboard-Notification-Id``), the group (rule, cluster), ``status`` (firing
    while one of its alerts fires), ``notification_ids`` and the ``firing`` and
    ``resolved`` sections, each a list of notifications as the engine wrote them (with
    their own ``id``: a receiver deduplicates per alert on it).
    """
    ids = [str(p.get("id", "")) for p in payloads]
    firing = [p for p in payloads if p.get("status") != "resolved"]
    resolved = [p for p in payloads if p.get("status") == "resolved"]
    first = payloads[0].get("alert", {}) if payloads else {}
    return {
        "id": message_id(ids),
        "group": {
            "rule": first.get("rule"),
            "rule_id": first.get("rule_id"),
            "cluster": first.get("cluster"),
        },
        "status": "firing" if firing else "resolved",
        "notification_ids": ids,
        "firing": firing,
        "resolved": resolved,
    }


def alert_line(payload: dict[str, Any]) -> str:
    alert = payload.get("alert", {})
    state = "RESOLVED" if payload.get("status") == "resolved" else "FIRING"
    value = alert.get("value")
    shown = "unknown" if value is None else f"{value:g}"
    return (
        f"[{state}] {alert.get('rule')}: {alert.get('entity')} on {alert.get('cluster')}"
        f" (value {shown})"
    )


def summary(message: dict[str, Any]) -> str:
    """One line: the alert's own line for a message of one, else counts per section."""
    items = [*message.get("firing", ()), *message.get("resolved", ())]
    if len(items) == 1:
        return alert_line(items[0])
    group = message.get("group", {})
    counts = [
        f"{name.upper()} {len(message.get(name, ()))}"
        for name in ("firing", "resolved")
        if message.get(name)
    ]
    return f"[{', '.join(counts)}] {group.get('rule')} on {group.get('cluster')}"


def lines(message: dict[str, Any]) -> list[str]:
    """The summary, then a line per alert, firing first (at most ``SHOWN``)."""
    items = [*message.get("firing", ()), *message.get("resolved", ())]
    out = [summary(message)]
    if len(items) > 1:
        out += [alert_line(p) for p in items[:SHOWN]]
        if len(items) > SHOWN:
            out.append(f"... and {len(items) - SHOWN} more")
    return out


@dataclass(frozen=True)
class Request:
    url: str
    body: bytes
    headers: dict[str, str]


def slack_body(message: dict[str, Any]) -> dict[str, Any]:
    text = "\n".join(lines(message))[:3000]
    return {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "plain_text", "text": text}}],
    }


def teams_body(message: dict[str, Any]) -> dict[str, Any]:
    items = [*message.get("firing", ()), *message.get("resolved", ())]
    sections: list[dict[str, Any]] = [
        {
            "activityTitle": alert_line(p),
            "facts": [
                {"name": key, "value": str(p.get("alert", {}).get(key))}
                for key in ("rule", "kind", "cluster", "entity", "value", "threshold")
            ],
        }
        for p in items[:TEAMS_SECTIONS]
    ]
    if len(items) > TEAMS_SECTIONS:
        sections.append({"text": f"... and {len(items) - TEAMS_SECTIONS} more"})
    return {
        "@type": "MessageCard",
        "@context": "https://schema.org/extensions",
        "summary": summary(message),
        "title": summary(message),
        "themeColor": "D63333" if message.get("firing") else "2EB886",
        "sections": sections,
    }


def build_request(channel: AlertChannel, message: dict[str, Any], now: float) -> Request:
    """The HTTP request of one message (``group_message``) to one channel (email is not HTTP)."""
    url = channel_url(channel)
    headers = {"Content-Type": "application/json", ID_HEADER: str(message.get("id", ""))}
    if channel.kind == AlertChannel.Kind.SLACK:
        body = slack_body(message)
    elif channel.kind == AlertChannel.Kind.TEAMS:
        body = teams_body(message)
    elif channel.kind == AlertChannel.Kind.WEBHOOK:
        body = message
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


def email_message(mail: Mail, message: dict[str, Any]) -> EmailMessage:
    mime = EmailMessage()
    message_id_ = str(message.get("id", ""))
    mime["Subject"] = summary(message)[:200]
    mime["From"] = mail.sender
    mime["To"] = ", ".join(mail.recipients)
    mime["Message-ID"] = f"<{message_id_}@mqboard>"
    mime[ID_HEADER] = message_id_
    text = lines(message)
    for name in ("firing", "resolved"):
        for p in message.get(name, ())[:SHOWN]:
            alert = p.get("alert", {})
            text += ["", alert_line(p)]
            text += [f"  {key}: {alert.get(key)}" for key in ("kind", "entity", "value")]
            text.append(f"  notification id: {p.get('id')}")
    text += ["", json.dumps(message, indent=2, sort_keys=True)]
    mime.set_content("\n".join(text))
    return mime


def send_email(channel: AlertChannel, message: dict[str, Any], timeout: float) -> None:
    """Send one message by mail; an SMTP or network failure is a ChannelError."""
    mail = parse_smtp_url(channel_url(channel))
    mime = email_message(mail, message)
    smtp_class = smtplib.SMTP_SSL if mail.tls else smtplib.SMTP
    try:
        with smtp_class(mail.host, mail.port, timeout=timeout) as smtp:
            if mail.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if mail.username:
                smtp.login(mail.username, mail.password)
            smtp.send_message(mime)
    except smtplib.SMTPResponseException as exc:
        raise ChannelError(f"the SMTP server answered {exc.smtp_code}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise ChannelError(f"not delivered: {type(exc).__name__}") from None
